using System.Runtime.InteropServices;

namespace DiffusionSharp.Tensors;

/// <summary>
/// The activation arena: tensors made while the pool is installed on a thread (<see cref="Tensor.Create"/>,
/// <see cref="Tensor.Clone"/>, <see cref="Tensor.Reshape"/>) come from it and go back to it when disposed. It keeps the
/// returned objects by shape and their native buffers by element count, so once a piece of work has run (a UNet step
/// at one resolution) the next run of it takes every tensor, buffer and view from what the last released: no managed
/// allocation and no new native buffer. A released buffer serves the next tensor of the same element count whatever its
/// shape, so the pool holds, per size, the most tensors of that size ever alive at once, not every intermediate.
/// <para>
/// <see cref="Install(ReadOnlySpan{int})"/> names the workload (the sizes that decide the shapes: batch, latent size,
/// context length); when it changes, the free buffers of the old workload are freed first (<see cref="Trim"/>), so a
/// change of resolution drops the old arena instead of keeping it beside the new one. <see cref="Dispose"/> frees every
/// free buffer; a tensor still rented then frees its own buffer when disposed (or finalized).
/// </para>
/// Thread-safe: a tensor may be returned from any thread. A pooled tensor must be disposed once; after that neither it nor
/// its views may be used (its object serves the next tensor of its shape: an access before then throws
/// <see cref="ObjectDisposedException"/>, one after reads the new tensor).
/// </summary>
public sealed unsafe class TensorPool : IDisposable
{
    [ThreadStatic] private static TensorPool? t_current;

    private readonly Lock _lock = new();
    private readonly List<ObjectBucket> _objects = [];
    private readonly List<BufferBucket> _buffers = [];
    private int[] _workload = [];
    private bool _disposed;

    /// <summary>The pool installed on the current thread, if any.</summary>
    public static TensorPool? Current => t_current;

    /// <summary>Native buffers the pool has allocated so far (a warm run adds none).</summary>
    public long BuffersAllocated { get; private set; }

    /// <summary>Tensor objects the pool has created so far (a warm run adds none).</summary>
    public long ObjectsAllocated { get; private set; }

    /// <summary>Bytes of the buffers the pool holds free for the next tensors.</summary>
    public long FreeBytes { get; private set; }

    /// <summary>Bytes of every buffer the pool allocated and has not freed, free or rented (a rented tensor that is
    /// finalized instead of disposed is still counted).</summary>
    public long HeldBytes { get; private set; }

    /// <summary>The most <see cref="HeldBytes"/> has been: the arena's size.</summary>
    public long PeakHeldBytes { get; private set; }

    /// <summary>Makes this the current thread's pool until the returned scope is disposed (scopes nest).</summary>
    public Scope Install()
    {
        lock (_lock) ObjectDisposedException.ThrowIf(_disposed, this);
        var previous = t_current;
        t_current = this;
        return new Scope(previous);
    }

    /// <summary>
    /// <see cref="Install()"/> for the work described by <paramref name="workload"/> (the sizes its shapes follow from);
    /// if it differs from the last install's, the pool is trimmed first: the old workload's free buffers are freed.
    /// </summary>
    public Scope Install(ReadOnlySpan<int> workload)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!workload.SequenceEqual(_workload))
            {
                TrimLocked();
                _workload = workload.ToArray();
            }
        }
        return Install();
    }

    /// <summary>A zero-filled tensor of <paramref name="shape"/> from the free ones, or a new one.</summary>
    internal Tensor Rent(ReadOnlySpan<int> shape)
    {
        long length = Tensor.ElementCount(shape);
        Tensor tensor;
        float* buffer;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            tensor = TakeObject(shape);
            buffer = TakeBuffer(length);
        }
        NativeMemory.Clear(buffer, (nuint)ByteCount(length));
        tensor.Attach(buffer, owns: true);
        return tensor;
    }

    /// <summary>A view of <paramref name="data"/> with <paramref name="shape"/>, the object from the free ones.</summary>
    internal Tensor RentView(float* data, ReadOnlySpan<int> shape)
    {
        Tensor tensor;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            tensor = TakeObject(shape);
        }
        tensor.Attach(data, owns: false);
        return tensor;
    }

    /// <summary>Takes back a disposed tensor of this pool: its object, and its buffer unless it was a view.</summary>
    internal void Return(Tensor tensor)
    {
        float* buffer = tensor.Detach();
        lock (_lock)
        {
            if (_disposed)
            {
                if (buffer != null) Free(buffer, tensor.Length);
                return;
            }
            if (buffer != null)
            {
                FindBuffers(tensor.Length).Free.Push((nint)buffer);
                FreeBytes += ByteCount(tensor.Length);
            }
            FindObjects(tensor.Shape).Free.Push(tensor);
        }
    }

    /// <summary>Frees every free buffer and drops every free object; rented tensors are unaffected.</summary>
    public void Trim()
    {
        lock (_lock) TrimLocked();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            TrimLocked();
        }
    }

    private void TrimLocked()
    {
        foreach (var bucket in _buffers)
            while (bucket.Free.TryPop(out nint buffer))
                Free((float*)buffer, bucket.Length);
        FreeBytes = 0;
        _buffers.Clear();
        _objects.Clear();
    }

    private Tensor TakeObject(ReadOnlySpan<int> shape)
    {
        var bucket = FindObjects(shape);
        if (bucket.Free.TryPop(out var tensor)) return tensor;
        ObjectsAllocated++;
        return new Tensor(bucket.Shape.ToArray(), this);
    }

    private float* TakeBuffer(long length)
    {
        var bucket = FindBuffers(length);
        if (bucket.Free.TryPop(out nint free))
        {
            FreeBytes -= ByteCount(length);
            return (float*)free;
        }
        long bytes = ByteCount(length);
        var buffer = (float*)NativeMemory.AlignedAlloc((nuint)bytes, Tensor.Alignment);
        if (bytes > 1 << 20) GC.AddMemoryPressure(bytes);
        BuffersAllocated++;
        HeldBytes += bytes;
        PeakHeldBytes = Math.Max(PeakHeldBytes, HeldBytes);
        return buffer;
    }

    private void Free(float* buffer, long length)
    {
        long bytes = ByteCount(length);
        NativeMemory.AlignedFree(buffer);
        if (bytes > 1 << 20) GC.RemoveMemoryPressure(bytes);
        HeldBytes -= bytes;
    }

    private ObjectBucket FindObjects(ReadOnlySpan<int> shape)
    {
        foreach (var bucket in _objects)
            if (bucket.Shape.AsSpan().SequenceEqual(shape)) return bucket;
        var created = new ObjectBucket(shape.ToArray());
        _objects.Add(created);
        return created;
    }

    private BufferBucket FindBuffers(long length)
    {
        foreach (var bucket in _buffers)
            if (bucket.Length == length) return bucket;
        var created = new BufferBucket(length);
        _buffers.Add(created);
        return created;
    }

    private static long ByteCount(long length) => Math.Max(1, length) * sizeof(float);

    /// <summary>Free tensor objects of one shape.</summary>
    private sealed class ObjectBucket(int[] shape)
    {
        public int[] Shape { get; } = shape;
        public Stack<Tensor> Free { get; } = new();
    }

    /// <summary>Free native buffers of one element count.</summary>
    private sealed class BufferBucket(long length)
    {
        public long Length { get; } = length;
        public Stack<nint> Free { get; } = new();
    }

    /// <summary>Restores the previously installed pool when disposed.</summary>
    public readonly struct Scope(TensorPool? previous) : IDisposable
    {
        public void Dispose() => t_current = previous;
    }
}
