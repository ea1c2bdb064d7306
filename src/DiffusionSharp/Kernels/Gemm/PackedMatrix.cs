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
    {
        if (n <= 0 || k <= 0) throw new ArgumentException($"A packed matrix needs positive sizes, got [{n}, {k}].");
        if (weight.Length != (long)n * k)
            throw new ArgumentException($"Weight has {weight.Length} values; [{n}, {k}] needs {(long)n * k}.");
        N = n;
        K = k;
        nuint count = (nuint)PanelCount * PanelWidth * (nuint)k;
        _data = (float*)NativeMemory.AlignedAlloc(count * sizeof(float), 64);
        NativeMemory.Clear(_data, count * sizeof(float));
        for (int row = 0; row < n; row++)
        {
            float* panel = _data + (long)(row / PanelWidth) * PanelWidth * k;
            int lane = row % PanelWidth;
            ReadOnlySpan<float> src = weight.Slice((int)((long)row * k), k);
            for (int p = 0; p < k; p++) panel[(long)p * PanelWidth + lane] = src[p];
        }
    }

    /// <summary>Bytes held by the packed data.</summary>
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
