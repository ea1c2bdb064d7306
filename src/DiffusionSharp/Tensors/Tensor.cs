using System.Runtime.InteropServices;
using DiffusionSharp.Kernels;

namespace DiffusionSharp.Tensors;

/// <summary>
/// A dense, row-major fp32 tensor in 64-byte-aligned native memory: the one activation type of the engine.
/// Image activations are channels-last, <c>[N, H, W, C]</c>; token sequences are <c>[N, T, C]</c>.
/// The tensor owns its buffer unless it was created as a view; dispose it to free the memory at once.
/// Tensors made by <see cref="Create"/>, <see cref="Clone"/> and <see cref="Reshape"/> while a <see cref="TensorPool"/> is
/// installed come from that pool and go back to it on <see cref="Dispose"/>: dispose such a tensor once, and use
/// neither it nor its views after that (the object and its buffer serve the next tensor of the same shape and size).
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    /// <summary>Alignment of every buffer, in bytes: one AVX-512 register, one cache line.</summary>
    public const int Alignment = 64;

    private float* _data;
    private bool _owns;

    /// <summary>The pool this object returns to on <see cref="Dispose"/>; null for a tensor made outside any pool.</summary>
    private readonly TensorPool? _pool;

    /// <summary>For a rented tensor of a pool: the layout (a slab's, or the one being planned) that has its block, and where.</summary>
    internal FirstFitPlacement? Placement;
    internal long PlacementOffset;

    /// <summary>The extent of each dimension, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements (the product of <see cref="Shape"/>).</summary>
    public long Length { get; }

    public int Rank => Shape.Length;

    /// <summary>Allocates a zero-filled tensor.</summary>
    public Tensor(params ReadOnlySpan<int> shape)
    {
        Shape = shape.ToArray();
        Length = ElementCount(Shape);
        nuint bytes = (nuint)Math.Max(1, Length) * sizeof(float);
        _data = (float*)NativeBuffers.Allocate((long)bytes);
        NativeMemory.Clear(_data, bytes);
        _owns = true;
        if (bytes > 1 << 20) GC.AddMemoryPressure((long)bytes);
    }

    private Tensor(float* data, int[] shape, bool owns)
    {
        _data = data;
        Shape = shape;
        Length = ElementCount(shape);
        _owns = owns;
    }

    /// <summary>An empty object of <paramref name="pool"/> for tensors of <paramref name="shape"/> (the pool keeps the array);
    /// <see cref="Attach"/> gives it memory.</summary>
    internal Tensor(int[] shape, TensorPool pool)
    {
        Shape = shape;
        Length = ElementCount(shape);
        _pool = pool;
    }

    /// <summary>A zero-filled tensor: from the current thread's <see cref="TensorPool"/> when one is installed
    /// (<see cref="TensorPool.Install()"/>), else newly allocated as by the constructor.</summary>
    public static Tensor Create(params ReadOnlySpan<int> shape) => TensorPool.Current?.Rent(shape) ?? new Tensor(shape);

    /// <summary>Points a pooled object at <paramref name="data"/>; <paramref name="owns"/>: the buffer goes back to the pool with it.</summary>
    internal void Attach(float* data, bool owns)
    {
        _data = data;
        _owns = owns;
    }

    /// <summary>Takes the memory from a pooled object: its buffer if it owned one (else null), the object left disposed.</summary>
    internal float* Detach()
    {
        float* owned = _owns ? _data : null;
        _data = null;
        _owns = false;
        return owned;
    }

    /// <summary>A tensor over memory owned by someone else (an arena, a pinned array). Disposing it frees nothing.</summary>
    public static Tensor View(float* data, params ReadOnlySpan<int> shape) => new(data, shape.ToArray(), owns: false);

    /// <summary>Copies <paramref name="values"/> into a new tensor of the given shape.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> values, params ReadOnlySpan<int> shape)
    {
        var t = new Tensor(shape);
        if (values.Length != t.Length)
            throw new ArgumentException($"{values.Length} values do not fill a tensor of shape {FormatShape(shape)} ({t.Length} elements).");
        values.CopyTo(t.Span);
        return t;
    }

    /// <summary>Pointer to element 0. Valid until the tensor is disposed.</summary>
    public float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    /// <summary>The elements as a span (tensors over 2^31 elements are not supported by this accessor).</summary>
    public Span<float> Span => new(Data, checked((int)Length));

    public int this[int dim] => Shape[dim];

    /// <summary>A view of the same memory with another shape of equal element count.</summary>
    public Tensor Reshape(params ReadOnlySpan<int> shape)
    {
        if (ElementCount(shape) != Length)
            throw new ArgumentException($"Cannot reshape {FormatShape(Shape)} to {FormatShape(shape)}.");
        return TensorPool.Current?.RentView(Data, shape) ?? new Tensor(Data, shape.ToArray(), owns: false);
    }

    public float[] ToArray() => Span.ToArray();

    public Tensor Clone()
    {
        var t = Create(Shape);
        Span.CopyTo(t.Span);
        return t;
    }

    public bool ShapeEquals(params ReadOnlySpan<int> shape) => Shape.AsSpan().SequenceEqual(shape);

    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension {d} in a tensor shape.");
            n = checked(n * d);
        }
        return n;
    }

    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    public override string ToString() => $"Tensor{FormatShape(Shape)}";

    public void Dispose()
    {
        if (_pool != null)
        {
            // The pool keeps the object; its finalizer stays registered for a rented object that is never disposed.
            if (_data != null) _pool.Return(this);
            return;
        }
        if (_data != null && _owns)
        {
            NativeBuffers.Free(_data);
            long bytes = Math.Max(1, Length) * sizeof(float);
            if (bytes > 1 << 20) GC.RemoveMemoryPressure(bytes);
        }
        _data = null;
        GC.SuppressFinalize(this);
    }

    ~Tensor()
    {
        if (_data == null || !_owns) return;
        if (_pool != null) _pool.Return(this, keepObject: false); // its memory may be a place in the pool's slab
        else NativeBuffers.Free(_data);
    }
}
