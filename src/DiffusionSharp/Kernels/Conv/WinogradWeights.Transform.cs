using System.Numerics;
using System.Runtime.CompilerServices;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// The vectorized filter transform U = G g Gᵀ (G [6, 3] of <see cref="Winograd43"/>, as hand-expanded sums in fp32),
/// <see cref="Vector{T}"/> lanes over the 32 output channels of a packed panel: per input channel it loads the 9 taps
/// of 32 filters (widening 16-bit storage with <see cref="WeightConversion.Widen(ushort*, long, WeightPrecision, float*)"/>,
/// which is exact), applies G down the columns and along the rows, and stores 36 x 32 floats, one row of each U_ξ.
/// One task per 32-output panel through the scheduler; each value depends only on its own 9 taps, so the result is
/// the same for any thread count. Against the double twin <see cref="TransformReference"/> it differs by a few fp32
/// roundings (the 1/6, 1/12, 1/24 factors are rounded to float).
/// Cost: it reads the 3x3 filters once and writes 4x their fp32 size, memory traffic of ~5 fp32 copies of the layer's
/// weights per call; the measured share of a Winograd convolution's time is in docs/KERNELS.md.
/// </summary>
public sealed unsafe partial class WinogradWeights
{
    /// <summary>
    /// Writes the 36 packed U_ξ of <paramref name="weights"/> (3x3, fp32 or 16-bit storage) to
    /// <paramref name="destination"/>: <see cref="ByteSizeOf"/> bytes, U_ξ at <c>destination + ξ * MatrixLengthOf(Cout, Cin)</c>,
    /// lanes past Cout zero.
    /// </summary>
    public static void Transform(ConvolutionWeights weights, float* destination)
    {
        CheckFilters(weights);
        if (KernelSettings.UseReference)
        {
            TransformReference(weights, destination);
            return;
        }
        var args = new TransformArgs
        {
            Source = weights.Matrix.Storage, Precision = weights.Matrix.Precision, Destination = destination,
            InChannels = weights.InChannels, MatrixLength = MatrixLengthOf(weights.OutChannels, weights.InChannels),
        };
        ThreadScheduler.Current.For(weights.Matrix.PanelCount, &TransformPanel, &args);
    }

    private struct TransformArgs
    {
        public void* Source; public WeightPrecision Precision; public float* Destination; public int InChannels; public long MatrixLength;
    }

    /// <summary>Input channels transformed into a local block before it is copied out, one contiguous run per U_ξ.</summary>
    private const int ChannelBlock = 8;

    /// <summary>
    /// One 32-output panel: source <c>[9][Cin][32]</c> (tap-major, as packed), destination rows ci of the panel in every
    /// U_ξ. The U_ξ lie MatrixLength apart, often a multiple of 4 KiB, so storing each (ci, ξ) straight there would hit
    /// the same cache set 36 times in a row; a block of <see cref="ChannelBlock"/> channels is built in a local
    /// [36][8][32] buffer and copied out as 36 runs of 1 KiB.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformPanel(void* context, int panel)
    {
        ref TransformArgs a = ref Unsafe.AsRef<TransformArgs>(context);
        TransformChannels(a.Source, a.Precision, a.InChannels, panel, 0, a.InChannels,
            a.Destination + (long)panel * a.InChannels * PackedMatrix.PanelWidth, a.MatrixLength);
    }

    /// <summary>
    /// Input channels [c0, c1) of one 32-output panel of packed 3x3 filters (<paramref name="source"/>: the layer's
    /// <c>[panels][9][Cin][32]</c> storage in <paramref name="precision"/>) into rows of the 36 U_ξ: channel c0 + c of U_ξ
    /// at <c>destination + ξ·<paramref name="pointStride"/> + c·32</c>. Used whole per panel by <see cref="Transform"/>,
    /// and per K block of a task's own panels by Winograd calls that transform inside their tasks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TransformChannels(void* source, WeightPrecision precision, int cin, int panel, int c0, int c1, float* destination, long pointStride)
    {
        const int width = PackedMatrix.PanelWidth;
        int n = Vector<float>.Count;
        long tapStride = (long)cin * width, panelSource = panel * 9 * tapStride;
        float* widened = stackalloc float[9 * width];
        float* block = stackalloc float[Winograd43.Points * ChannelBlock * width]; // [36][8][32]
        Vector<float>* g = stackalloc Vector<float>[9];
        Vector<float>* gg = stackalloc Vector<float>[18];
        Vector<float>* u = stackalloc Vector<float>[Winograd43.Points];
        for (int cb = c0; cb < c1; cb += ChannelBlock)
        {
            int channels = Math.Min(ChannelBlock, c1 - cb);
            for (int c = 0; c < channels; c++)
            {
                float* taps;
                long stride;
                if (precision == WeightPrecision.Float32)
                {
                    taps = (float*)source + panelSource + (long)(cb + c) * width;
                    stride = tapStride;
                }
                else
                {
                    ushort* narrow = (ushort*)source + panelSource + (long)(cb + c) * width;
                    for (int tap = 0; tap < 9; tap++) WeightConversion.Widen(narrow + tap * tapStride, width, precision, widened + tap * width);
                    taps = widened;
                    stride = width;
                }
                for (int lane = 0; lane < width; lane += n)
                {
                    for (int tap = 0; tap < 9; tap++) g[tap] = Unsafe.ReadUnaligned<Vector<float>>(taps + tap * stride + lane);
                    for (int kx = 0; kx < 3; kx++) FilterTransform(g[kx], g[3 + kx], g[6 + kx], gg + kx, 3);           // G g: [6, 3]
                    for (int i = 0; i < 6; i++) FilterTransform(gg[i * 3], gg[i * 3 + 1], gg[i * 3 + 2], u + i * 6, 1); // (G g) Gᵀ: [6, 6]
                    for (int xi = 0; xi < Winograd43.Points; xi++) Unsafe.WriteUnaligned(block + (xi * ChannelBlock + c) * width + lane, u[xi]);
                }
            }
            float* dst = destination + (long)(cb - c0) * width;
            for (int xi = 0; xi < Winograd43.Points; xi++)
                new ReadOnlySpan<float>(block + xi * ChannelBlock * width, channels * width).CopyTo(new Span<float>(dst + xi * pointStride, channels * width));
        }
    }

    /// <summary>G [g0, g1, g2] into r[0], r[s], ..., r[5s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FilterTransform(Vector<float> g0, Vector<float> g1, Vector<float> g2, Vector<float>* r, int s)
    {
        Vector<float> outer = g0 + g2;
        Vector<float> skewed = g0 * new Vector<float>(1f / 24) + g2 * new Vector<float>(1f / 6);
        Vector<float> middle = g1 * new Vector<float>(1f / 12);
        r[0] = g0 * new Vector<float>(1f / 4);
        r[s] = (outer + g1) * new Vector<float>(-1f / 6);
        r[2 * s] = (outer - g1) * new Vector<float>(-1f / 6);
        r[3 * s] = skewed + middle;
        r[4 * s] = skewed - middle;
        r[5 * s] = g2;
    }
}
