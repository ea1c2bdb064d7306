using System.Runtime.InteropServices;
using DiffusionSharp.Kernels;

namespace DiffusionSharp.Tensors;

/// <summary>
/// The activation arena: tensors made while the pool is installed on a thread (<see cref="Tensor.Create"/>,
/// <see cref="Tensor.Clone"/>, <see cref="Tensor.Reshape"/>) come from it and go back to it when disposed.
/// <para>
/// The first installed scope of a workload (a UNet step at one resolution) runs as without a pool, each tensor in its own
/// buffer freed when it returns, while the pool plans where each would sit in one buffer (<see cref="FirstFitPlacement"/>:
/// the lowest gap that fits among the tensors alive). At the end of that scope it allocates that buffer, the slab, at the
/// plan's high water mark: about the most bytes the step ever has alive at once (SD 1.5 at 512x512, batch 2: a 165 MB
/// slab for a 136 MB peak). Every later scope places its tensors the same way; the same work from the same state gets the
/// same places, so it takes all of them from the slab, and tensor objects (kept by shape) from the ones returned: no
/// managed allocation and no new native buffer. A tensor that does not fit (other work, or tensors kept alive across
/// scopes) gets its own buffer, kept by element count for the next tensor of that size.
/// </para>
/// <para>
/// <see cref="Install(ReadOnlySpan{int})"/> names the workload (the sizes that decide the shapes: batch, latent size,
/// context length); when it changes, or on <see cref="Trim"/>, the pool frees its free buffers and its slab (a slab still
/// holding tensors is freed when the last of them returns) and plans anew, so a change of resolution drops the old arena
/// instead of keeping it beside the new one. <see cref="Dispose"/> does the same for good.
/// </para>
/// Thread-safe: a tensor may be returned from any thread. A pooled tensor must be disposed once; after that neither it nor
/// its views may be used (its object and memory serve the next tensors: an access before then throws
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

    /// <summary>Where the tensors of the current workload would sit in a slab: computed while there is none.</summary>
    private FirstFitPlacement _planned = new();
    /// <summary>The slab: one buffer the size of the first step's <see cref="FirstFitPlacement.HighWater"/>.</summary>
    private Slab? _slab;
    /// <summary>Slabs trimmed while tensors were in them: each is freed when its last tensor returns.</summary>
    private readonly List<Slab> _retired = [];
    private long _rentedBytes;

    /// <summary>The pool installed on the current thread, if any.</summary>
    public static TensorPool? Current => t_current;

    /// <summary>Native buffers the pool has allocated so far, slabs included (a warm run adds none).</summary>
    public long BuffersAllocated { get; private set; }

    /// <summary>Tensor objects the pool has created so far (a warm run adds none).</summary>
    public long ObjectsAllocated { get; private set; }

    /// <summary>Bytes of the buffers, outside the slab, that the pool holds free for the next tensors.</summary>
    public long FreeBytes { get; private set; }

    /// <summary>Bytes of every buffer the pool allocated and has not freed, slabs included, free or rented (a rented
    /// tensor that is finalized instead of disposed is still counted).</summary>
    public long HeldBytes { get; private set; }

    /// <summary>The most <see cref="HeldBytes"/> has been: the arena's size.</summary>
    public long PeakHeldBytes { get; private set; }

    /// <summary>The most bytes of tensors rented at once: the least any arena for this work could hold.</summary>
    public long PeakRentedBytes { get; private set; }

    /// <summary>Makes this the current thread's pool until the returned scope is disposed (scopes nest).</summary>
    public Scope Install()
    {
        lock (_lock) ObjectDisposedException.ThrowIf(_disposed, this);
        var previous = t_current;
        t_current = this;
        return new Scope(this, previous);
    }

    /// <summary>The end of an installed scope: after the first work of a workload, the slab its layout needs.</summary>
    private void EndScope()
    {
        lock (_lock)
            if (!_disposed && _slab == null && _planned.HighWater > 0)
                _slab = CreateSlab(_planned.HighWater, _planned.MostBlocks);
    }

    /// <summary>
    /// <see cref="Install()"/> for the work described by <paramref name="workload"/> (the sizes its shapes follow from);
    /// if it differs from the last install's, the pool is trimmed first (<see cref="Trim"/>).
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

    /// <summary>
    /// A zero-filled tensor of <paramref name="shape"/>: at its first-fit place in the slab when there is one and it fits,
    /// else in a free buffer of its size or a new one. Before there is a slab its place is planned all the same.
    /// </summary>
    internal Tensor Rent(ReadOnlySpan<int> shape)
    {
        long length = Tensor.ElementCount(shape), bytes = ByteCount(length);
        Tensor tensor;
        float* buffer;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            tensor = TakeObject(shape);
            long offset = _slab?.Placement.Place(bytes) ?? -1;
            if (offset >= 0)
            {
                buffer = (float*)((byte*)_slab!.Data + offset);
                (tensor.Placement, tensor.PlacementOffset) = (_slab.Placement, offset);
            }
            else
            {
                (tensor.Placement, tensor.PlacementOffset) = _slab == null ? (_planned, _planned.Place(bytes)) : (null, -1);
                buffer = TakeBuffer(length);
            }
            _rentedBytes += bytes;
            PeakRentedBytes = Math.Max(PeakRentedBytes, _rentedBytes);
        }
        NativeMemory.Clear(buffer, (nuint)bytes);
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

    /// <summary>
    /// Takes back a disposed tensor of this pool: its object, and its memory unless it was a view — its place in a slab,
    /// or its own buffer, kept for the next tensor of its size while there is a slab to fall back from, else freed.
    /// A tensor finalized without being disposed returns its memory only (<paramref name="keepObject"/> false).
    /// </summary>
    internal void Return(Tensor tensor, bool keepObject = true)
    {
        float* buffer = tensor.Detach();
        lock (_lock)
        {
            if (buffer != null)
            {
                _rentedBytes -= ByteCount(tensor.Length);
                var placement = tensor.Placement;
                tensor.Placement = null;
                placement?.Remove(tensor.PlacementOffset);
                if (placement != null && placement == _slab?.Placement)
                {
                    buffer = null;
                }
                else if (placement != null && ReleaseFromRetired(placement))
                {
                    buffer = null;
                }
                else if (_slab == null || _disposed)
                {
                    Free(buffer, tensor.Length);
                    buffer = null;
                }
            }
            if (_disposed) return;
            if (buffer != null)
            {
                FindBuffers(tensor.Length).Free.Push((nint)buffer);
                FreeBytes += ByteCount(tensor.Length);
            }
            if (keepObject) FindObjects(tensor.Shape).Free.Push(tensor);
        }
    }

    /// <summary>Frees every free buffer and the slab (once no tensor is in it), drops every free object and forgets the
    /// planned layout, so that the next work sizes a new slab; rented tensors are unaffected.</summary>
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
        _planned = new FirstFitPlacement();
        if (_slab == null) return;
        if (_slab.Placement.Count == 0) FreeSlab(_slab);
        else _retired.Add(_slab);
        _slab = null;
    }

    /// <summary>Whether <paramref name="placement"/> is a retired slab's (whose block was just removed); frees the slab once empty.</summary>
    private bool ReleaseFromRetired(FirstFitPlacement placement)
    {
        for (int i = 0; i < _retired.Count; i++)
        {
            var slab = _retired[i];
            if (slab.Placement != placement) continue;
            if (placement.Count == 0)
            {
                FreeSlab(slab);
                _retired.RemoveAt(i);
            }
            return true;
        }
        return false;
    }

    private Slab CreateSlab(long bytes, int blocks)
    {
        // Huge pages where it is large: its first touch is the costly part. No GC memory pressure: the slab is freed by
        // Trim or Dispose, never by a collection, so pressure would only start gen2 collections during the next steps.
        var data = (float*)NativeBuffers.Allocate(bytes);
        BuffersAllocated++;
        HeldBytes += bytes;
        PeakHeldBytes = Math.Max(PeakHeldBytes, HeldBytes);
        return new Slab(data, bytes, blocks);
    }

    private void FreeSlab(Slab slab)
    {
        NativeBuffers.Free(slab.Data);
        HeldBytes -= slab.Bytes;
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
        var buffer = (float*)NativeBuffers.Allocate(bytes);
        if (bytes > 1 << 20) GC.AddMemoryPressure(bytes);
        BuffersAllocated++;
        HeldBytes += bytes;
        PeakHeldBytes = Math.Max(PeakHeldBytes, HeldBytes);
        return buffer;
    }

    private void Free(float* buffer, long length)
    {
        long bytes = ByteCount(length);
        NativeBuffers.Free(buffer);
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

    /// <summary>One buffer holding many tensors at the offsets its placement gives them.</summary>
    private sealed class Slab(float* data, long bytes, int blocks)
    {
        public float* Data { get; } = data;
        public long Bytes { get; } = bytes;
        public FirstFitPlacement Placement { get; } = new(bytes, blocks);
    }

    /// <summary>Restores the previously installed pool when disposed.</summary>
    public readonly struct Scope(TensorPool pool, TensorPool? previous) : IDisposable
    {
        public void Dispose()
        {
            t_current = previous;
            pool.EndScope();
        }
    }
}
