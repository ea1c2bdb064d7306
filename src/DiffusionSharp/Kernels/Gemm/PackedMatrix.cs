using System.Runtime.InteropServices;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// A weight matrix W of logical shape [N, K] (PyTorch <c>Linear.weight</c> layout: N outputs, K inputs), packed once
/// at load into column panels for <see cref="GemmKernel"/>: panel p holds outputs [p*PanelWidth, (p+1)*PanelWidth)
/// as K rows of <see cref="PanelWidth"/> floats (zero-padded past N). Memory: ceil(N/PanelWidth)*PanelWidth*K floats.
/// </summary>
public sealed unsafe class PackedMatrix : IDisposable
{
    /// <summary>Outputs per panel: the width of the GEMM micro-kernel's register tile (two AVX-512 registers of floats).</summary>
    public const int PanelWidth = 32;

    private float* _data;

    public int N { get; }
    public int K { get; }
    public int PanelCount => (N + PanelWidth - 1) / PanelWidth;

    /// <summary>Panel-major data: <c>[PanelCount][K][PanelWidth]</c>.</summary>
    public float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    /// <summary>Packs <paramref name="weight"/>, row-major [n, k].</summary>
    public PackedMatrix(ReadOnlySpan<float> weight, int n, int k)
        : this(weight, n, k, inChannels: k, kernelHeight: 1, kernelWidth: 1)
    {
    }

    private PackedMatrix(ReadOnlySpan<float> weight, int n, int k, int inChannels, int kernelHeight, int kernelWidth)
    {
        if (n <= 0 || k <= 0) throw new ArgumentException($"A packed matrix needs positive sizes, got [{n}, {k}].");
        if (weight.Length != (long)n * k)
            throw new ArgumentException($"Weight has {weight.Length} values; [{n}, {k}] needs {(long)n * k}.");
        N = n;
        K = k;
        nuint count = (nuint)PanelCount * PanelWidth * (nuint)k;
        _data = (float*)NativeMemory.AlignedAlloc(count * sizeof(float), 64);
        fixed (float* source = weight)
        {
            var args = new PackArgs { Source = source, Destination = _data, N = n, K = k, InChannels = inChannels, KernelHeight = kernelHeight, KernelWidth = kernelWidth };
            Threading.ThreadScheduler.Current.For(PanelCount, &PackPanel, &args);
        }
    }

    /// <summary>
    /// Packs convolution filters given in PyTorch layout [outChannels, inChannels, kh, kw] as the matrix
    /// [outChannels, kh*kw*inChannels] whose columns run in (ky, kx, ci) order — one channels-last im2col row —
    /// without an intermediate reordered copy.
    /// </summary>
    public static PackedMatrix FromConvolution(ReadOnlySpan<float> weight, int outChannels, int inChannels, int kernelHeight, int kernelWidth)
        => new(weight, outChannels, kernelHeight * kernelWidth * inChannels, inChannels, kernelHeight, kernelWidth);

    private struct PackArgs
    {
        public float* Source; public float* Destination; public int N; public int K;
        public int InChannels; public int KernelHeight; public int KernelWidth;
    }

    /// <summary>
    /// Fills panel <paramref name="panel"/>: K rows of PanelWidth lanes, written sequentially; column kk of output
    /// row o is read from (ky, kx, ci) = (kk / (kw*Cin), kk / Cin % kw, kk % Cin) of filter o (for a plain matrix
    /// kh = kw = 1, Cin = K, so that is just W[o, kk]). Lanes past N are zero.
    /// </summary>
    private static void PackPanel(void* context, int panel)
    {
        ref PackArgs a = ref System.Runtime.CompilerServices.Unsafe.AsRef<PackArgs>(context);
        int o0 = panel * PanelWidth, lanes = Math.Min(PanelWidth, a.N - o0);
        long filterSize = (long)a.InChannels * a.KernelHeight * a.KernelWidth;
        float* dst = a.Destination + (long)panel * PanelWidth * a.K;
        int kk = 0;
        for (int ky = 0; ky < a.KernelHeight; ky++)
        for (int kx = 0; kx < a.KernelWidth; kx++)
        {
            long tap = (long)ky * a.KernelWidth + kx;
            for (int ci = 0; ci < a.InChannels; ci++, kk++)
            {
                float* row = dst + (long)kk * PanelWidth;
                float* src = a.Source + (long)o0 * filterSize + (long)ci * a.KernelHeight * a.KernelWidth + tap;
                int lane = 0;
                for (; lane < lanes; lane++) row[lane] = src[lane * filterSize];
                for (; lane < PanelWidth; lane++) row[lane] = 0f;
            }
        }
    }

    public long ByteSize => (long)PanelCount * PanelWidth * K * sizeof(float);

    /// <summary>W[n, k] (slow; for reference kernels and tests).</summary>
    public float this[int n, int k] => Data[(long)(n / PanelWidth) * PanelWidth * K + (long)k * PanelWidth + n % PanelWidth];

    public void Dispose()
    {
        if (_data != null) NativeMemory.AlignedFree(_data);
        _data = null;
        GC.SuppressFinalize(this);
    }

    ~PackedMatrix()
    {
        if (_data != null) NativeMemory.AlignedFree(_data);
    }
}
