using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// 3x3 filters transformed for Winograd F(4x4, 3x3): for each of the 36 points ξ of the 6x6 transformed tile, the matrix
/// U_ξ [Cout, Cin] with U_ξ[o, ci] = (G g_{o,ci} Gᵀ)[ξ], computed in double and rounded once to float, packed as a
/// <see cref="PackedMatrix"/> is (<c>[Cout/32][Cin][32]</c>, zero past Cout) so the 36 products run through the GEMM
/// micro-kernel. Memory: 36 / 9 = 4x the 3x3 weights (plus the 32-column padding) —
/// <see cref="ByteSize"/>, always fp32 (made from fp32 or 16-bit filters, which stay with the layer for the implicit GEMM).
/// Kept apart from <see cref="ConvolutionWeights"/> so that a 16-bit store can be added beside it.
/// </summary>
public sealed unsafe class WinogradWeights : IDisposable
{
    private float* _data;

    public int OutChannels { get; }
    public int InChannels { get; }
    public int PanelCount => (OutChannels + PackedMatrix.PanelWidth - 1) / PackedMatrix.PanelWidth;

    /// <summary>Floats of one U_ξ: PanelCount * 32 * Cin.</summary>
    public long MatrixLength => (long)PanelCount * PackedMatrix.PanelWidth * InChannels;

    public long ByteSize => Winograd43.Points * MatrixLength * sizeof(float);

    /// <summary>The 36 packed matrices, U_ξ at <c>Data + ξ * MatrixLength</c>.</summary>
    internal float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    /// <summary>Transforms 3x3 filters (any padding or stride is the caller's concern; the kernel needs stride 1).</summary>
    public WinogradWeights(ConvolutionWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.KernelHeight != 3 || weights.KernelWidth != 3)
            throw new ArgumentException($"Winograd F(4x4, 3x3) needs 3x3 filters, got {weights.KernelHeight}x{weights.KernelWidth}.", nameof(weights));
        OutChannels = weights.OutChannels;
        InChannels = weights.InChannels;
        _data = (float*)NativeMemory.AlignedAlloc((nuint)ByteSize, 64);
        var args = new TransformArgs
        {
            Source = weights.Matrix.Storage, Precision = weights.Matrix.Precision, Destination = _data, InChannels = InChannels, MatrixLength = MatrixLength,
        };
        Threading.ThreadScheduler.Current.For(PanelCount, &TransformPanel, &args);
    }

    private struct TransformArgs
    {
        public void* Source; public WeightPrecision Precision; public float* Destination; public int InChannels; public long MatrixLength;
    }

    /// <summary>
    /// One 32-output panel: reads g[ky, kx] of each (o, ci) from the packed 3x3 matrix (column (ky*3 + kx)*Cin + ci,
    /// zero lanes past Cout stay zero) and writes its 36 transformed values into the same panel of every U_ξ.
    /// </summary>
    private static void TransformPanel(void* context, int panel)
    {
        ref TransformArgs a = ref Unsafe.AsRef<TransformArgs>(context);
        const int width = PackedMatrix.PanelWidth;
        int cin = a.InChannels;
        long src = (long)panel * width * 9 * cin;
        float* dst = a.Destination + (long)panel * width * cin;
        double* g = stackalloc double[9];
        double* gg = stackalloc double[18];
        for (int ci = 0; ci < cin; ci++)
        for (int lane = 0; lane < width; lane++)
        {
            for (int tap = 0; tap < 9; tap++) g[tap] = Weight(a, src + ((long)tap * cin + ci) * width + lane);
            for (int i = 0; i < 6; i++)                                                 // G g: [6, 3]
            for (int j = 0; j < 3; j++)
                gg[i * 3 + j] = Winograd43.G[i, 0] * g[j] + Winograd43.G[i, 1] * g[3 + j] + Winograd43.G[i, 2] * g[6 + j];
            for (int i = 0; i < 6; i++)                                                 // (G g) Gᵀ: [6, 6]
            for (int j = 0; j < 6; j++)
            {
                double u = gg[i * 3] * Winograd43.G[j, 0] + gg[i * 3 + 1] * Winograd43.G[j, 1] + gg[i * 3 + 2] * Winograd43.G[j, 2];
                dst[(i * 6 + j) * a.MatrixLength + (long)ci * width + lane] = (float)u;
            }
        }
    }

    /// <summary>Element <paramref name="index"/> of the packed 3x3 filters, widened to fp32 if they are stored in 16 bits.</summary>
    private static float Weight(in TransformArgs a, long index) => a.Precision == WeightPrecision.Float32
        ? ((float*)a.Source)[index]
        : WeightConversion.WidenReference(((ushort*)a.Source)[index], a.Precision);

    /// <summary>U_ξ[o, ci] (slow; reference kernels and tests).</summary>
    public float this[int xi, int o, int ci]
        => Data[xi * MatrixLength + ((long)(o / PackedMatrix.PanelWidth) * InChannels + ci) * PackedMatrix.PanelWidth + o % PackedMatrix.PanelWidth];

    public void Dispose()
    {
        if (_data != null) NativeMemory.AlignedFree(_data);
        _data = null;
        GC.SuppressFinalize(this);
    }

    ~WinogradWeights()
    {
        if (_data != null) NativeMemory.AlignedFree(_data);
    }
}
