using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Nn;

namespace DiffusionSharp.Quantization;

/// <summary>
/// Records what quantization needs from the fp32 model's activations, installed as the <see cref="ActivationObserver"/>
/// while the model runs on calibration prompts: per layer the largest magnitude of every input channel (for the
/// smoothing factors), and a uniform random sample of its input rows (linear inputs, or convolution patches in
/// (ky, kx, ci) order) by reservoir sampling (Vitter's algorithm R, seeded per layer) for measuring a candidate's output
/// error. Layers are kept in the order they first ran; <paramref name="include"/> picks which are recorded.
/// </summary>
public sealed unsafe class CalibrationRecorder(int samplesPerLayer, Func<string, bool> include) : IActivationObserver
{
    private readonly Dictionary<string, LayerRecord> _byKey = new(StringComparer.Ordinal);
    private readonly List<LayerRecord> _layers = [];

    /// <summary>One layer's statistics.</summary>
    public sealed class LayerRecord
    {
        internal LayerRecord(string key, Linear? linear, Conv2d? conv, int inChannels, int outChannels, int kernelSize, int capacity)
        {
            Key = key;
            Linear = linear;
            Convolution = conv;
            InChannels = inChannels;
            OutChannels = outChannels;
            KernelSize = kernelSize;
            ChannelMax = new float[inChannels];
            Samples = new float[(long)capacity * K];
            Capacity = capacity;
            Random = new Random(StableHash(key));
        }

        public string Key { get; }
        public Linear? Linear { get; }
        public Conv2d? Convolution { get; }
        public int InChannels { get; }
        public int OutChannels { get; }
        public int KernelSize { get; }
        public int K => KernelSize * KernelSize * InChannels;

        /// <summary>max |x| per input channel over every row seen.</summary>
        public float[] ChannelMax { get; }

        /// <summary>[Capacity, K]; the first <see cref="SampleCount"/> rows are filled.</summary>
        public float[] Samples { get; }
        public int Capacity { get; }
        public int SampleCount { get; internal set; }
        public long RowsSeen { get; internal set; }
        internal Random Random { get; }
    }

    public IReadOnlyList<LayerRecord> Layers => _layers;

    public void ObserveLinear(Linear layer, float* x, int rows)
    {
        if (!include(layer.Key)) return;
        var r = Record(layer.Key, () => new LayerRecord(layer.Key, layer, null, layer.InFeatures, layer.OutFeatures, 1, samplesPerLayer));
        int k = layer.InFeatures;
        for (int i = 0; i < rows; i++) UpdateMax(r.ChannelMax, x + (long)i * k, k);
        var source = ActivationRows.Matrix(x, k, k);
        for (int i = 0; i < rows; i++) Offer(r, source, i);
    }

    public void ObserveConvolution(Conv2d layer, float* x, in Conv2dGeometry g)
    {
        if (!include(layer.Key)) return;
        var r = Record(layer.Key, () => new LayerRecord(layer.Key, null, layer, layer.InChannels, layer.OutChannels, layer.KernelSize, samplesPerLayer));
        long pixels = (long)g.Batch * g.InHeight * g.InWidth;
        for (long p = 0; p < pixels; p++) UpdateMax(r.ChannelMax, x + p * g.InChannels, g.InChannels);
        var patches = ActivationRows.Patches(x, g);
        for (int i = 0; i < g.OutputPixels; i++) Offer(r, patches, i);
    }

    private LayerRecord Record(string key, Func<LayerRecord> create)
    {
        if (_byKey.TryGetValue(key, out var r)) return r;
        r = create();
        _byKey[key] = r;
        _layers.Add(r);
        return r;
    }

    /// <summary>Algorithm R: the n-th row (0-based) replaces a uniform slot with probability capacity / (n + 1).</summary>
    private static void Offer(LayerRecord r, in ActivationRows rows, int row)
    {
        long n = r.RowsSeen++;
        long slot = n < r.Capacity ? n : r.Random.NextInt64(n + 1);
        if (slot >= r.Capacity) return;
        fixed (float* samples = r.Samples)
        {
            float* dst = samples + slot * r.K;
            float* src = rows.Row(row, dst);
            if (src != dst) Buffer.MemoryCopy(src, dst, r.K * sizeof(float), r.K * sizeof(float));
        }
        if (n < r.Capacity) r.SampleCount++;
    }

    private static void UpdateMax(float[] max, float* x, int n)
    {
        fixed (float* m = max)
        {
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; i <= n - 16; i += 16)
                    Vector512.Max(Vector512.Load(m + i), Vector512.Abs(Vector512.Load(x + i))).Store(m + i);
            for (; i < n; i++) m[i] = MathF.Max(m[i], MathF.Abs(x[i]));
        }
    }

    /// <summary>FNV-1a of the key: a seed that does not change between runs (string.GetHashCode does).</summary>
    private static int StableHash(string key)
    {
        uint h = 2166136261;
        foreach (char c in key) h = (h ^ c) * 16777619;
        return (int)(h & 0x7FFFFFFF);
    }
}
