using System.Runtime.InteropServices;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// A weight matrix W of logical shape [N, K] (PyTorch <c>Linear.weight</c> layout: N outputs, K inputs), packed once
/// at load into column panels for <see cref="GemmKernel"/>: panel p holds outputs [p*PanelWidth, (p+1)*PanelWidth)
/// as K rows of <see cref="PanelWidth"/> weights (zero-padded past N). Weights are stored in fp32 or, to halve memory
/// and weight traffic, in a 16-bit <see cref="WeightPrecision"/> that the GEMM widens to fp32 one K block at a time.
/// Memory: ceil(N/PanelWidth)*PanelWidth*K weights of <see cref="WeightPrecision"/>'s size.
/// </summary>
public sealed unsafe class PackedMatrix : IDisposable
{
    /// <summary>Outputs per panel: the width of the GEMM micro-kernel's register tile (two AVX-512 registers of floats).</summary>
    public const int PanelWidth = 32;

    private void* _data;

    public int N { get; }
    public int K { get; }
    public int PanelCount => (N + PanelWidth - 1) / PanelWidth;

    /// <summary>How the weights are stored.</summary>
    public WeightPrecision Precision { get; }

    /// <summary>Panel-major storage: <c>[PanelCount][K][PanelWidth]</c> weights of <see cref="Precision"/>.</summary>
    public void* Storage
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    /// <summary>Panel-major fp32 data: <c>[PanelCount][K][PanelWidth]</c>; only for <see cref="WeightPrecision.Float32"/> storage.</summary>
    public float* Data
    {
        get
        {
            if (Precision != WeightPrecision.Float32)
                throw new InvalidOperationException($"This [{N}, {K}] matrix stores {Precision.Name()} weights, not fp32 panels.");
            return (float*)Storage;
        }
    }

    /// <summary>Packs <paramref name="weight"/>, row-major [n, k], rounding to <paramref name="precision"/>.</summary>
    public PackedMatrix(ReadOnlySpan<float> weight, int n, int k, WeightPrecision precision = WeightPrecision.Float32)
        : this(weight, n, k, precision, inChannels: k, kernelHeight: 1, kernelWidth: 1)
    {
    }

    private PackedMatrix(ReadOnlySpan<float> weight, int n, int k, WeightPrecision precision, int inChannels, int kernelHeight, int kernelWidth)
    {
        if (n <= 0 || k <= 0) throw new ArgumentException($"A packed matrix needs positive sizes, got [{n}, {k}].");
        if (weight.Length != (long)n * k)
            throw new ArgumentException($"Weight has {weight.Length} values; [{n}, {k}] needs {(long)n * k}.");
        N = n;
        K = k;
        Precision = precision;
        nuint count = (nuint)PanelCount * PanelWidth * (nuint)k;
        _data = NativeBuffers.Allocate((long)count * precision.ElementSize());
        fixed (float* source = weight)
        {
            var args = new PackArgs
            {
                Source = source, Destination = _data, Precision = precision, N = n, K = k,
                InChannels = inChannels, KernelHeight = kernelHeight, KernelWidth = kernelWidth,
            };
            Threading.ThreadScheduler.Current.For(PanelCount, &PackPanel, &args);
        }
    }

    /// <summary>
    /// Packs convolution filters given in PyTorch layout [outChannels, inChannels, kh, kw] as the matrix
    /// [outChannels, kh*kw*inChannels] whose columns run in (ky, kx, ci) order — one channels-last im2col row —
    /// without an intermediate reordered copy.
    /// </summary>
    public static PackedMatrix FromConvolution(ReadOnlySpan<float> weight, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        WeightPrecision precision = WeightPrecision.Float32)
        => new(weight, outChannels, kernelHeight * kernelWidth * inChannels, precision, inChannels, kernelHeight, kernelWidth);

    private struct PackArgs
    {
        public float* Source; public void* Destination; public WeightPrecision Precision; public int N; public int K;
        public int InChannels; public int KernelHeight; public int KernelWidth;
    }

    /// <summary>
    /// Fills panel <paramref name="panel"/>: K rows of PanelWidth lanes; column kk of output row o is read from
    /// (ky, kx, ci) = (kk / (kw*Cin), kk / Cin % kw, kk % Cin) of filter o (for a plain matrix kh = kw = 1, Cin = K,
    /// so that is just W[o, kk]). Lanes past N are zero. It goes PanelWidth columns at a time: the destination of such a
    /// block is PanelWidth x PanelWidth consecutive values (4 KiB, in L1), filled lane by lane from each source row's run
    /// of up to PanelWidth columns (contiguous for a matrix, kh·kw apart for a filter), so every source cache line is
    /// read once instead of once per lane, as a column at a time across all the panel's rows did.
    /// </summary>
    private static void PackPanel(void* context, int panel)
    {
        ref PackArgs a = ref System.Runtime.CompilerServices.Unsafe.AsRef<PackArgs>(context);
        int o0 = panel * PanelWidth, lanes = Math.Min(PanelWidth, a.N - o0);
        int taps = a.KernelHeight * a.KernelWidth;
        long filterSize = (long)a.InChannels * taps;
        float* block = stackalloc float[PanelWidth * PanelWidth];
        long panelOffset = (long)panel * PanelWidth * a.K;
        for (int tap = 0; tap < taps; tap++)
        for (int ci0 = 0; ci0 < a.InChannels; ci0 += PanelWidth)
        {
            int columns = Math.Min(PanelWidth, a.InChannels - ci0);
            if (lanes < PanelWidth || columns < PanelWidth) new Span<float>(block, PanelWidth * PanelWidth).Clear();
            for (int lane = 0; lane < lanes; lane++)
            {
                float* src = a.Source + (o0 + lane) * filterSize + (long)ci0 * taps + tap;
                for (int j = 0; j < columns; j++) block[j * PanelWidth + lane] = src[(long)j * taps];
            }
            int kk = tap * a.InChannels + ci0;
            long offset = panelOffset + (long)kk * PanelWidth;
            int count = columns * PanelWidth;
            if (a.Precision == WeightPrecision.Float32)
            {
                new ReadOnlySpan<float>(block, count).CopyTo(new Span<float>((float*)a.Destination + offset, count));
                continue;
            }
            WeightConversion.Narrow(block, count, a.Precision, (ushort*)a.Destination + offset);
        }
    }

    public long ByteSize => (long)PanelCount * PanelWidth * K * Precision.ElementSize();

    /// <summary>W[n, k] as fp32 (slow; for reference kernels and tests).</summary>
    public float this[int n, int k]
    {
        get
        {
            long index = (long)(n / PanelWidth) * PanelWidth * K + (long)k * PanelWidth + n % PanelWidth;
            return Precision == WeightPrecision.Float32
                ? ((float*)Storage)[index]
                : WeightConversion.WidenReference(((ushort*)Storage)[index], Precision);
        }
    }

    public void Dispose()
    {
        NativeBuffers.Free(_data);
        _data = null;
        GC.SuppressFinalize(this);
    }

    ~PackedMatrix()
    {
        NativeBuffers.Free(_data);
    }
}
