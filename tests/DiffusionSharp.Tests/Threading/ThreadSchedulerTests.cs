using System.Runtime.CompilerServices;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Tests.Threading;

/// <summary>The scheduler's contract: every index once, static partitions, exceptions, nesting, scopes, shutdown.</summary>
public unsafe class ThreadSchedulerTests
{
    private struct Counts
    {
        public int* Hits;
        public int* Threads;
    }

    private static void CountHit(void* context, int i)
    {
        ref Counts c = ref *(Counts*)context;
        Interlocked.Increment(ref c.Hits[i]);
        c.Threads[i] = Environment.CurrentManagedThreadId;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 2)]
    [InlineData(3, 1000)]
    [InlineData(4, 7)]
    public void For_runs_every_index_exactly_once_in_contiguous_static_ranges(int threads, int count)
    {
        using var scheduler = new ThreadScheduler(threads);
        var hits = new int[count];
        var ids = new int[count];
        fixed (int* h = hits, t = ids)
        {
            var c = new Counts { Hits = h, Threads = t };
            for (int round = 0; round < 3; round++)
            {
                Array.Clear(hits);
                scheduler.For(count, &CountHit, &c);
                Assert.All(hits, v => Assert.Equal(1, v));
            }
        }
        int parts = Math.Min(threads, count);
        Assert.Equal(Environment.CurrentManagedThreadId, ids[0]);
        for (int p = 0; p < parts; p++)
        {
            var (start, end) = ThreadScheduler.Partition(count, parts, p);
            Assert.All(ids[start..end], id => Assert.Equal(ids[start], id));
        }
    }

    /// <summary>
    /// The interleaving behind the host crashes of 2026-11-22: the caller is held between raising a worker's ticket and
    /// claiming its sleep flag while the worker, still spinning from the last call, sees the ticket, runs the call and
    /// flags itself asleep; the caller's claim then succeeds and releases a worker that has nothing to do. That worker
    /// must go back to waiting. Running the call again (the bug) runs index 1 twice and leaves the call's count of
    /// pending workers below zero, so the call never returns: the call runs on its own thread with a time limit.
    /// </summary>
    [Fact]
    public void A_worker_released_after_it_already_ran_the_call_does_not_run_it_again()
    {
        using var scheduler = new ThreadScheduler(2, TimeSpan.FromMilliseconds(200));
        var hits = new int[2];
        var ids = new int[2];
        fixed (int* h = hits, t = ids)
        {
            var c = new Counts { Hits = h, Threads = t };
            nint hitsAddress = (nint)h, countsAddress = (nint)(&c);
            scheduler.For(2, &CountHit, &c);                       // the worker now spins, watching for the next call
            Array.Clear(hits);
            int held = 0;
            scheduler.AfterTicketRaised = part =>
            {
                if (Interlocked.Exchange(ref held, 1) != 0) return;
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while ((Volatile.Read(ref ((int*)hitsAddress)[1]) == 0 || !scheduler.WorkerSleeping(part)) && DateTime.UtcNow < deadline)
                    Thread.Sleep(1);
            };
            var caller = new Thread(() => scheduler.For(2, &CountHit, (void*)countsAddress));
            caller.Start();
            Assert.True(caller.Join(TimeSpan.FromSeconds(30)), "the call did not return");
            scheduler.AfterTicketRaised = null;
            Assert.Equal(1, held);
            Thread.Sleep(400);                                      // time for the stale release to be taken
            Assert.Equal([1, 1], hits);

            for (int round = 0; round < 20; round++) scheduler.For(2, &CountHit, &c);
            Assert.Equal([21, 21], hits);
        }
    }

    [Fact]
    public void Many_back_to_back_calls_with_and_without_spinning_complete()
    {
        foreach (var spin in new[] { TimeSpan.Zero, TimeSpan.FromMicroseconds(50) })
        {
            using var scheduler = new ThreadScheduler(3, spin);
            var hits = new int[5];
            var ids = new int[5];
            fixed (int* h = hits, t = ids)
            {
                var c = new Counts { Hits = h, Threads = t };
                for (int round = 0; round < 2000; round++) scheduler.For(5, &CountHit, &c);
            }
            Assert.All(hits, v => Assert.Equal(2000, v));
        }
    }

    private static void ThrowOnIndex(void* context, int i)
    {
        if (i == *(int*)context) throw new InvalidOperationException($"index {i}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(99)]
    public void Exception_in_any_partition_propagates_with_its_type_and_the_scheduler_stays_usable(int failing)
    {
        using var scheduler = new ThreadScheduler(2);
        var index = new[] { failing };
        fixed (int* p = index)
        {
            int* pi = p;
            var e = Assert.Throws<InvalidOperationException>(() => scheduler.For(100, &ThrowOnIndex, pi));
            Assert.Equal($"index {failing}", e.Message);
            index[0] = -1;
            scheduler.For(100, &ThrowOnIndex, pi);
        }
    }

    private struct Nesting
    {
        public ThreadScheduler Scheduler;
        public int* Outer;
        public int* InnerHits;
    }

    private static void Outer(void* context, int i)
    {
        ref Nesting n = ref Unsafe.AsRef<Nesting>(context);
        n.Outer[i] = Environment.CurrentManagedThreadId;
        var inner = new Counts { Hits = n.InnerHits + i * 4, Threads = n.InnerHits + 100 + i * 4 };
        n.Scheduler.For(4, &CountHit, &inner);
    }

    [Fact]
    public void Nested_for_runs_serially_on_the_calling_thread()
    {
        using var scheduler = new ThreadScheduler(2);
        var outer = new int[8];
        var inner = new int[200];
        fixed (int* o = outer, ih = inner)
        {
            var n = new Nesting { Scheduler = scheduler, Outer = o, InnerHits = ih };
            scheduler.For(8, &Outer, Unsafe.AsPointer(ref n));
        }
        for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
        {
            Assert.Equal(1, inner[i * 4 + j]);
            Assert.Equal(outer[i], inner[100 + i * 4 + j]);
        }
    }

    [Fact]
    public void Concurrent_callers_on_one_scheduler_both_complete()
    {
        using var scheduler = new ThreadScheduler(2);
        var results = new int[2][];
        Parallel.For(0, 2, caller =>
        {
            var hits = new int[50];
            var ids = new int[50];
            fixed (int* h = hits, t = ids)
            {
                var c = new Counts { Hits = h, Threads = t };
                for (int round = 0; round < 200; round++) scheduler.For(50, &CountHit, &c);
            }
            results[caller] = hits;
        });
        Assert.All(results, r => Assert.All(r, v => Assert.Equal(200, v)));
    }

    [Fact]
    public void Use_scopes_the_current_scheduler_to_the_thread()
    {
        using var one = new ThreadScheduler(1);
        using var three = new ThreadScheduler(3);
        Assert.Same(ThreadScheduler.Default, ThreadScheduler.Current);
        using (one.Use())
        {
            Assert.Same(one, ThreadScheduler.Current);
            using (three.Use()) Assert.Same(three, ThreadScheduler.Current);
            Assert.Same(one, ThreadScheduler.Current);
            ThreadScheduler? seen = null;
            var other = new Thread(() => seen = ThreadScheduler.Current);
            other.Start();
            other.Join();
            Assert.Same(ThreadScheduler.Default, seen);
        }
        Assert.Same(ThreadScheduler.Default, ThreadScheduler.Current);
    }

    [Fact]
    public void Disposed_scheduler_refuses_work_and_bad_arguments_are_rejected()
    {
        var scheduler = new ThreadScheduler(2);
        scheduler.Dispose();
        Assert.Throws<ObjectDisposedException>(() => scheduler.For(10, &ThrowOnIndex, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThreadScheduler(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThreadScheduler(2, TimeSpan.FromTicks(-1)));
    }
}
