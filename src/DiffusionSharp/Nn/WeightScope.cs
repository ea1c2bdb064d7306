using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Nn;

/// <summary>
/// A key prefix into an <see cref="IWeightSource"/> (candle's VarBuilder): <c>scope.Push("down_blocks").Push(0)</c>
/// addresses <c>down_blocks.0.</c>, and <c>Require("weight", 320, 4, 3, 3)</c> reads <c>down_blocks.0.weight</c>
/// after checking its shape. Scopes pushed from one root share the record of consumed keys, so a loader can
/// report the checkpoint tensors no layer asked for (<see cref="UnusedKeys"/>). A scope may also carry quantized
/// replacements for some layers (<see cref="Quantized"/>), which those layers bind instead of their fp32 weights, and
/// the storage precision of the GEMM weights its layers pack (<see cref="Precision"/>).
/// </summary>
public sealed class WeightScope
{
    private readonly HashSet<string> _consumed;

    public IWeightSource Source { get; }

    /// <summary>Quantized layers to bind instead of fp32 weights (null: none).</summary>
    public IQuantizedLayers? Quantized { get; }

    /// <summary>How <see cref="Linear"/> and <see cref="Conv2d"/> layers in this scope store their packed weights
    /// (arithmetic stays fp32). Default fp32.</summary>
    public WeightPrecision Precision { get; }

    /// <summary>The key prefix of this scope, ending with '.' (empty at the root).</summary>
    public string Prefix { get; }

    public WeightScope(IWeightSource source, IQuantizedLayers? quantized = null, WeightPrecision precision = WeightPrecision.Float32)
        : this(source, quantized, precision, "", new HashSet<string>(StringComparer.Ordinal))
    {
    }

    private WeightScope(IWeightSource source, IQuantizedLayers? quantized, WeightPrecision precision, string prefix, HashSet<string> consumed)
    {
        Source = source;
        Quantized = quantized;
        Precision = precision;
        Prefix = prefix;
        _consumed = consumed;
    }

    public WeightScope Push(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"A scope name is one key segment, got '{name}'.", nameof(name));
        return new WeightScope(Source, Quantized, Precision, Prefix + name + ".", _consumed);
    }

    public WeightScope Push(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new WeightScope(Source, Quantized, Precision, Prefix + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".", _consumed);
    }

    /// <summary>The key of the layer this scope addresses: the prefix without its final '.'.</summary>
    public string LayerKey => Prefix.TrimEnd('.');

    /// <summary>The full checkpoint key of <paramref name="name"/> in this scope.</summary>
    public string KeyOf(string name) => Prefix + name;

    public bool Contains(string name) => Source.Contains(KeyOf(name));

    /// <summary>The stored shape of <paramref name="name"/>; <see cref="MissingWeightException"/> when absent.</summary>
    public long[] ShapeOf(string name)
    {
        string key = KeyOf(name);
        if (!Source.Contains(key)) throw new MissingWeightException(key, Source.Describe(key));
        return Source.GetShape(key);
    }

    /// <summary>Reads <paramref name="name"/> into a new array after checking that its shape is <paramref name="shape"/>.</summary>
    public float[] Require(string name, params int[] shape)
    {
        var values = new float[Tensors.Tensor.ElementCount(shape)];
        RequireInto(name, values, shape);
        return values;
    }

    /// <summary>
    /// Reads <paramref name="name"/> into a native buffer (checked against <paramref name="shape"/>) and hands it to
    /// <paramref name="use"/>, which packs or copies it: loading allocates nothing on the managed heap. The buffer is
    /// the calling thread's, reused by every weight it reads and grown to the largest, until
    /// <see cref="ReleaseReadBuffer"/> frees it (the loader does, when a model is loaded), so nothing of the fp32 copy
    /// stays resident. A buffer per weight instead cost SD 1.5's load 7 s (20 s against 13 s) in fresh-page faults.
    /// </summary>
    public T WithWeight<T>(string name, int[] shape, Func<ReadOnlyMemory<float>, T> use)
    {
        int count = checked((int)Tensors.Tensor.ElementCount(shape));
        var buffer = t_readBuffer is { InUse: false } reusable ? reusable : new ReadBuffer();
        t_readBuffer ??= buffer;
        buffer.InUse = true;
        try
        {
            var memory = buffer.Take(count);
            RequireInto(name, memory.Span, shape);
            return use(memory);
        }
        finally
        {
            buffer.InUse = false;
            if (buffer != t_readBuffer) ((IDisposable)buffer).Dispose();
        }
    }

    /// <summary>Frees the calling thread's weight-reading buffer (<see cref="WithWeight"/>); the next read makes a new one.</summary>
    public static void ReleaseReadBuffer()
    {
        if (t_readBuffer is { InUse: false } buffer)
        {
            t_readBuffer = null;
            ((IDisposable)buffer).Dispose();
        }
    }

    [ThreadStatic] private static ReadBuffer? t_readBuffer;

    /// <summary>Floats in native memory (<see cref="NativeFloats"/>), grown on demand, freed on dispose.</summary>
    private sealed unsafe class ReadBuffer : System.Buffers.MemoryManager<float>
    {
        private NativeFloats? _block;

        public bool InUse { get; set; }

        public Memory<float> Take(int length)
        {
            if (_block == null || length > _block.Length)
            {
                _block?.Dispose();
                _block = new NativeFloats(length);
            }
            return CreateMemory(length);
        }

        public override Span<float> GetSpan() => _block != null ? new(_block.Data, _block.Length) : [];

        public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(_block!.Data + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
            _block?.Dispose();
            _block = null;
        }
    }

    /// <summary>Owns a native float block; the finalizer frees the block of a thread that ended without
    /// <see cref="ReleaseReadBuffer"/>.</summary>
    private sealed unsafe class NativeFloats(int length) : IDisposable
    {
        public float* Data { get; private set; } = (float*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)Math.Max(length, 1), sizeof(float));

        public int Length { get; } = length;

        public void Dispose()
        {
            Free();
            GC.SuppressFinalize(this);
        }

        private void Free()
        {
            if (Data != null) System.Runtime.InteropServices.NativeMemory.Free(Data);
            Data = null;
        }

        ~NativeFloats() => Free();
    }

    /// <summary>Reads <paramref name="name"/> into <paramref name="destination"/> after checking its shape.</summary>
    public void RequireInto(string name, Span<float> destination, params int[] shape)
    {
        string key = KeyOf(name);
        long[] expected = Array.ConvertAll(shape, d => (long)d);
        long[] found = ShapeOf(name);
        if (!found.AsSpan().SequenceEqual(expected)) throw new WeightShapeException(key, Source.Describe(key), expected, found);
        if (destination.Length != Tensors.Tensor.ElementCount(shape))
            throw new ArgumentException($"Destination holds {destination.Length} values; '{key}' {WeightShapeException.Format(expected)} has {Tensors.Tensor.ElementCount(shape)}.");
        Source.Read(key, destination);
        _consumed.Add(key);
    }

    /// <summary>Keys read so far through this scope or any scope of the same root.</summary>
    public IReadOnlyCollection<string> ConsumedKeys => _consumed;

    /// <summary>Keys of the source that no layer has read (ordinal order).</summary>
    public IReadOnlyList<string> UnusedKeys()
        => Source.Keys.Where(k => !_consumed.Contains(k)).Order(StringComparer.Ordinal).ToList();

    public override string ToString() => Prefix.Length == 0 ? "(root)" : Prefix.TrimEnd('.');
}
