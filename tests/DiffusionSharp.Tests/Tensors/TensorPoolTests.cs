using System.Runtime.CompilerServices;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Tests.Tensors;

/// <summary><see cref="TensorPool"/>: what it hands out, where it places it, what it reuses, what it frees.</summary>
public unsafe class TensorPoolTests
{
    private const int FloatsPerGranule = Tensor.Alignment / sizeof(float);

    [Fact]
    public void Without_an_installed_pool_tensors_are_plain()
    {
        Assert.Null(TensorPool.Current);
        using var pool = new TensorPool();
        using var t = Tensor.Create(2, 3);
        Assert.Equal(0, pool.ObjectsAllocated);
        Assert.Equal([2, 3], t.Shape);
    }

    [Fact]
    public void A_released_tensor_object_serves_the_next_one_of_its_shape_zero_filled()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var first = Tensor.Create(4, 5);
        first.Span.Fill(7f);
        first.Dispose();
        using var second = Tensor.Create(4, 5);
        Assert.Same(first, second);
        Assert.All(second.ToArray(), v => Assert.Equal(0f, v));
        using var other = Tensor.Create(5, 4);
        Assert.NotSame(second, other);
        Assert.Equal([5, 4], other.Shape);
        Assert.Equal(2, pool.ObjectsAllocated);
    }

    [Fact]
    public void After_the_first_scope_one_slab_holds_the_same_work_at_its_first_fit_places()
    {
        using var pool = new TensorPool();
        for (int scope = 0; scope < 3; scope++)
        {
            using (pool.Install())
            {
                var a = Tensor.Create(100);                 // offset 0, 448 bytes with the 64-byte granule
                var b = Tensor.Create(50);                  // offset 448
                a.Dispose();
                var c = Tensor.Create(60);                  // fits where a was
                var d = Tensor.Create(4 * FloatsPerGranule); // 256 bytes: not in the 192 left between c and b, so after b
                if (scope > 0)
                {
                    Assert.Equal(448, (byte*)b.Data - (byte*)c.Data);
                    Assert.Equal(448 + 256, (byte*)d.Data - (byte*)c.Data);
                }
                b.Dispose();
                c.Dispose();
                d.Dispose();
            }
            Assert.Equal(4 + 1, pool.BuffersAllocated);       // the first scope's own buffers (freed as returned), then the slab
            Assert.Equal(448 + 256 + 256, pool.HeldBytes);    // the slab: the first scope's high water mark
        }
        Assert.Equal(4, pool.ObjectsAllocated);
    }

    [Fact]
    public void A_tensor_that_does_not_fit_the_slab_gets_its_own_buffer_kept_for_the_next_one()
    {
        using var pool = new TensorPool();
        using (pool.Install()) Tensor.Create(16).Dispose();
        long slab = pool.BuffersAllocated;
        for (int i = 0; i < 3; i++)
        {
            using (pool.Install())
            {
                using var inSlab = Tensor.Create(16);
                using var outside = Tensor.Create(32);
                Assert.True(outside.Data != inSlab.Data);
            }
        }
        Assert.Equal(slab + 1, pool.BuffersAllocated);
        Assert.Equal(32 * sizeof(float), pool.FreeBytes);
    }

    /// <summary>Random work, the same in every scope but with random extra tensors kept across scopes: live tensors never
    /// overlap, whether they sit in the slab or in their own buffers.</summary>
    [Fact]
    public void Live_tensors_never_overlap()
    {
        using var pool = new TensorPool();
        var random = new Random(5);
        var kept = new List<Tensor>();
        for (int scope = 0; scope < 6; scope++)
        {
            var script = new Random(11);
            using (pool.Install())
            {
                var live = new List<(Tensor T, float Mark)>();
                for (int op = 0; op < 300; op++)
                {
                    if (live.Count > 0 && script.Next(3) == 0)
                    {
                        int k = script.Next(live.Count);
                        var (t, mark) = live[k];
                        Assert.All(t.ToArray(), v => Assert.Equal(mark, v));
                        t.Dispose();
                        live.RemoveAt(k);
                    }
                    else
                    {
                        var t = Tensor.Create(1 + script.Next(200));
                        float mark = scope * 1000 + op;
                        t.Span.Fill(mark);
                        live.Add((t, mark));
                    }
                    if (random.Next(50) == 0 && live.Count > 0)
                    {
                        kept.Add(live[^1].T);                 // outlives the scope, as a sampler's last prediction does
                        live.RemoveAt(live.Count - 1);
                    }
                }
                foreach (var (t, mark) in live)
                {
                    Assert.All(t.ToArray(), v => Assert.Equal(mark, v));
                    t.Dispose();
                }
            }
        }
        foreach (var t in kept) t.Dispose();
        pool.Trim();
        Assert.Equal(0, pool.HeldBytes);
    }

    [Fact]
    public void Disposing_twice_returns_the_tensor_once()
    {
        using var pool = new TensorPool();
        using (pool.Install()) Tensor.Create(16).Dispose();
        using var _ = pool.Install();
        var t = Tensor.Create(16);
        t.Dispose();
        t.Dispose();
        using var a = Tensor.Create(16);
        using var b = Tensor.Create(16);
        Assert.NotSame(a, b);
        Assert.True(Math.Abs((byte*)a.Data - (byte*)b.Data) >= 16 * sizeof(float));
    }

    [Fact]
    public void A_returned_tensor_cannot_be_read_until_it_is_handed_out_again()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var t = Tensor.Create(3);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Span[0]);
    }

    [Fact]
    public void Views_come_from_the_pool_and_do_not_return_the_memory()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        using var t = Tensor.Create(2, 6);
        t.Span[5] = 3f;
        var view = t.Reshape(3, 4);
        Assert.True(view.Data == t.Data);
        Assert.Equal(3f, view.Span[5]);
        view.Dispose();
        Assert.Equal(3f, t.Span[5]);
        using var again = t.Reshape(3, 4);
        Assert.Same(view, again);
    }

    [Fact]
    public void A_new_workload_frees_the_old_slab_and_the_same_workload_keeps_it()
    {
        using var pool = new TensorPool();
        using (pool.Install([1, 8, 8])) Tensor.Create(1, 8, 8).Dispose();
        Assert.Equal(64 * sizeof(float), pool.HeldBytes);
        using (pool.Install([1, 8, 8])) Tensor.Create(1, 8, 8).Dispose();
        Assert.Equal(2, pool.BuffersAllocated);
        using (pool.Install([1, 4, 4]))
        {
            Assert.Equal(0, pool.HeldBytes);
            Tensor.Create(1, 4, 4).Dispose();
        }
        Assert.Equal(16 * sizeof(float), pool.HeldBytes);
        Assert.Equal(64 * sizeof(float), pool.PeakHeldBytes);
    }

    [Fact]
    public void A_slab_trimmed_while_in_use_is_freed_when_its_last_tensor_returns()
    {
        using var pool = new TensorPool();
        using (pool.Install()) Tensor.Create(32).Dispose();
        Tensor alive;
        using (pool.Install()) alive = Tensor.Create(32);
        alive.Span.Fill(2f);
        pool.Trim();
        Assert.Equal(32 * sizeof(float), pool.HeldBytes);
        using (pool.Install())
        {
            using var next = Tensor.Create(32);            // planned anew, in its own buffer: never over the live one
            Assert.True(next.Data != alive.Data);
        }
        Assert.All(alive.ToArray(), v => Assert.Equal(2f, v));
        alive.Dispose();
        Assert.Equal(32 * sizeof(float), pool.HeldBytes); // only the new slab is left
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RentAndDrop(TensorPool pool)
    {
        using (pool.Install())
        {
            Tensor.Create(32).Span.Fill(1f);   // in the slab, never disposed
            Tensor.Create(64).Span.Fill(1f);   // too big for the slab: its own buffer, never disposed
        }
    }

    [Fact]
    public void A_tensor_finalized_without_being_disposed_gives_back_its_place_or_its_buffer()
    {
        using var pool = new TensorPool();
        using (pool.Install()) Tensor.Create(32).Dispose();
        RentAndDrop(pool);
        Assert.Equal((32 * sizeof(float) + 64 * sizeof(float), 0), (pool.HeldBytes, pool.FreeBytes));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(64 * sizeof(float), pool.FreeBytes);   // the own buffer is back, free for the next tensor of its size
        pool.Trim();
        Assert.Equal(0, pool.HeldBytes);                    // and the slab is empty again: the trim freed it at once
    }

    [Fact]
    public void Scopes_nest_and_restore_the_previous_pool()
    {
        using var outer = new TensorPool();
        using var inner = new TensorPool();
        using (outer.Install())
        {
            using (inner.Install())
            {
                Assert.Same(inner, TensorPool.Current);
                Tensor.Create(2).Dispose();
            }
            Assert.Same(outer, TensorPool.Current);
        }
        Assert.Null(TensorPool.Current);
        Assert.Equal((0, 1), (outer.ObjectsAllocated, inner.ObjectsAllocated));
    }

    [Fact]
    public void Disposing_the_pool_frees_its_memory_and_later_returns_free_their_own()
    {
        var pool = new TensorPool();
        using (pool.Install()) Tensor.Create(10).Dispose();
        Tensor inSlab, own;
        using (pool.Install())
        {
            inSlab = Tensor.Create(10);
            own = Tensor.Create(20);
        }
        pool.Dispose();
        Assert.Equal(Tensor.Alignment + 20 * sizeof(float), pool.HeldBytes); // the slab (one granule) and the own buffer
        inSlab.Span[9] = 1f;
        own.Span[19] = 1f;
        inSlab.Dispose();
        own.Dispose();
        Assert.Equal(0, pool.HeldBytes);
        Assert.Throws<ObjectDisposedException>(() => pool.Install());
    }

    [Fact]
    public void Tensors_may_be_returned_from_other_threads()
    {
        using var pool = new TensorPool();
        for (int scope = 0; scope < 3; scope++)
        {
            Tensor[] tensors;
            using (pool.Install()) tensors = Enumerable.Range(0, 64).Select(i => Tensor.Create(i % 4 + 1, 3)).ToArray();
            Assert.Equal(64, tensors.Select(t => (nint)t.Data).Distinct().Count());
            Parallel.ForEach(tensors, t => t.Dispose());
        }
        Assert.Equal(64 + 1, pool.BuffersAllocated);
        Assert.Equal(64, pool.ObjectsAllocated);
    }
}
