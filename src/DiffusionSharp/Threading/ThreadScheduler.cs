namespace DiffusionSharp.Threading;

/// <summary>
/// The one owner of compute threads. Persistent workers, static partitions: <see cref="For"/> splits
/// <c>[0, count)</c> into <see cref="ThreadCount"/> contiguous ranges, runs range 0 on the calling thread and the
/// others on workers, and returns when all are done. A kernel that writes each index's result independently of
/// which thread ran it is therefore bitwise deterministic for any thread count.
/// Calls from inside a body run serially (no nested parallelism, no deadlock). Nothing is allocated per call.
/// </summary>
public sealed unsafe class ThreadScheduler : IDisposable
{
    private static ThreadScheduler? s_default;
    private static readonly object s_defaultLock = new();

    [ThreadStatic] private static bool t_insideBody;

    private readonly Worker[] _workers;
    private readonly ManualResetEventSlim _done = new(false, spinCount: 200);
    private readonly object _callLock = new();
    private int _pending;
    private delegate*<void*, int, void> _body;
    private void* _context;
    private int _count;
    private Exception? _failure;
    private bool _disposed;

    /// <summary>Threads that take part in a <see cref="For"/> call, the calling thread included.</summary>
    public int ThreadCount { get; }

    public ThreadScheduler(int threadCount)
    {
        if (threadCount < 1) throw new ArgumentOutOfRangeException(nameof(threadCount), threadCount, "At least one thread is needed.");
        ThreadCount = threadCount;
        _workers = new Worker[threadCount - 1];
        for (int i = 0; i < _workers.Length; i++) _workers[i] = new Worker(this, i + 1);
    }

    /// <summary>
    /// The scheduler kernels use. Created on first use with <see cref="Environment.ProcessorCount"/> threads,
    /// or by <see cref="SetDefaultThreadCount"/>.
    /// </summary>
    public static ThreadScheduler Default
    {
        get
        {
            if (s_default is { } s) return s;
            lock (s_defaultLock) return s_default ??= new ThreadScheduler(Environment.ProcessorCount);
        }
    }

    /// <summary>Replaces the default scheduler by one with <paramref name="threadCount"/> threads (0 = all processors).</summary>
    public static void SetDefaultThreadCount(int threadCount)
    {
        if (threadCount < 0) throw new ArgumentOutOfRangeException(nameof(threadCount), threadCount, "Thread count cannot be negative.");
        if (threadCount == 0) threadCount = Environment.ProcessorCount;
        lock (s_defaultLock)
        {
            if (s_default?.ThreadCount == threadCount) return;
            var old = s_default;
            s_default = new ThreadScheduler(threadCount);
            old?.Dispose();
        }
    }

    /// <summary>Index range of partition <paramref name="part"/> of <paramref name="parts"/> over <c>[0, count)</c>.</summary>
    public static (int Start, int End) Partition(int count, int parts, int part)
        => ((int)((long)count * part / parts), (int)((long)count * (part + 1) / parts));

    /// <summary>
    /// Calls <paramref name="body"/>(<paramref name="context"/>, i) for every i in <c>[0, count)</c>, spread over the threads.
    /// <paramref name="context"/> usually points at a struct on the caller's stack holding the kernel's arguments.
    /// </summary>
    public void For(int count, delegate*<void*, int, void> body, void* context)
    {
        if (count <= 0) return;
        if (ThreadCount == 1 || count == 1 || t_insideBody || !Monitor.TryEnter(_callLock))
        {
            RunSerial(count, body, context);
            return;
        }
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _body = body;
            _context = context;
            _count = count;
            _failure = null;
            int active = Math.Min(ThreadCount, count);
            _pending = active - 1;
            _done.Reset();
            for (int w = 0; w < active - 1; w++) _workers[w].Start(active);
            RunPartition(0, active);
            if (active > 1) _done.Wait();
            if (_failure is { } f) throw new AggregateException("A parallel kernel failed.", f);
        }
        finally
        {
            _body = null;
            _context = null;
            Monitor.Exit(_callLock);
        }
    }

    private static void RunSerial(int count, delegate*<void*, int, void> body, void* context)
    {
        bool wasInside = t_insideBody;
        t_insideBody = true;
        try { for (int i = 0; i < count; i++) body(context, i); }
        finally { t_insideBody = wasInside; }
    }

    private void RunPartition(int part, int parts)
    {
        var (start, end) = Partition(_count, parts, part);
        t_insideBody = true;
        try
        {
            for (int i = start; i < end; i++) _body(_context, i);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _failure, e, null);
        }
        finally
        {
            t_insideBody = false;
        }
    }

    private void WorkerFinished()
    {
        if (Interlocked.Decrement(ref _pending) == 0) _done.Set();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var w in _workers) w.Stop();
    }

    private sealed class Worker
    {
        private readonly ThreadScheduler _owner;
        private readonly int _part;
        private readonly ManualResetEventSlim _start = new(false, spinCount: 200);
        private readonly Thread _thread;
        private volatile int _parts;
        private volatile bool _stop;

        public Worker(ThreadScheduler owner, int part)
        {
            _owner = owner;
            _part = part;
            _thread = new Thread(Loop) { IsBackground = true, Name = $"DiffusionSharp worker {part}" };
            _thread.Start();
        }

        public void Start(int parts)
        {
            _parts = parts;
            _start.Set();
        }

        public void Stop()
        {
            _stop = true;
            _start.Set();
        }

        private void Loop()
        {
            while (true)
            {
                _start.Wait();
                _start.Reset();
                if (_stop) return;
                _owner.RunPartition(_part, _parts);
                _owner.WorkerFinished();
            }
        }
    }
}
