using System.Runtime.InteropServices;
using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// 3x3 filters transformed for Winograd F(4x4, 3x3): for each of the 36 points ξ of the 6x6 transformed tile, the matrix
/// U_ξ [Cout, Cin] with U_ξ[o, ci] = (G g_{o,ci} Gᵀ)[ξ], packed as a <see cref="PackedMatrix"/> is
/// (<c>[Cout/32][Cin][32]</c>, zero past Cout) so the 36 products run through the GEMM micro-kernel, always fp32 (made
/// from fp32 or 16-bit filters). Memory: 36 / 9 = 4x the fp32 3x3 weights (plus the 32-column padding),
/// <see cref="ByteSizeOf"/>.
/// <para>
/// Layers do not keep these: <see cref="Conv2dKernel.ForwardWinograd(float*, in Conv2dGeometry, ConvolutionWeights, float*, float*, float*, float*)"/>
/// transforms a layer's filters at each call (<see cref="Transform"/>, WinogradWeights.Transform.cs) into a scratch
/// buffer that every layer reuses. An instance of this class owns one transform, for callers that run the same
/// filters many times (benchmarks, tests, the reference twin). <see cref="TransformReference"/>, in double and
/// rounded once, is the spec the vectorized transform is tested against.
/// </para>
/// </summary>
public sealed unsafe partial class WinogradWeights : IDisposable
{
    private float* _data;

    public int OutChannels { get; }
    public int InChannels { get; }
    public int PanelCount => (OutChannels + PackedMatrix.PanelWidth - 1) / PackedMatrix.PanelWidth;

    /// <summary>Floats of one U_ξ: PanelCount * 32 * Cin.</summary>
    public long MatrixLength => MatrixLengthOf(OutChannels, InChannels);

    public long ByteSize => ByteSizeOf(OutChannels, InChannels);

    /// <summary>The 36 packed matrices, U_ξ at <c>Data + ξ * MatrixLength</c>.</summary>
    internal float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    /// <summary>Transforms 3x3 filters with the vectorized <see cref="Transform"/> (any padding or stride is the caller's
    /// concern; the kernel needs stride 1).</summary>
    public WinogradWeights(ConvolutionWeights weights) : this(weights, reference: false)
    {
    }

    /// <summary>Transforms 3x3 filters with the double-precision <see cref="TransformReference"/>.</summary>
    public static WinogradWeights Reference(ConvolutionWeights weights) => new(weights, reference: true);

    private WinogradWeights(ConvolutionWeights weights, bool reference)
    {
        CheckFilters(weights);
        OutChannels = weights.OutChannels;
        InChannels = weights.InChannels;
        _data = (float*)NativeBuffers.Allocate(ByteSize);
        if (reference) TransformReference(weights, _data);
        else Transform(weights, _data);
    }

    /// <summary>Floats of one U_ξ for [Cout, Cin] filters: ceil(Cout/32) * 32 * Cin.</summary>
    public static long MatrixLengthOf(int outChannels, int inChannels)
        => (long)((outChannels + PackedMatrix.PanelWidth - 1) / PackedMatrix.PanelWidth) * PackedMatrix.PanelWidth * inChannels;

    /// <summary>Bytes of the 36 transformed matrices of [Cout, Cin] 3x3 filters.</summary>
    public static long ByteSizeOf(int outChannels, int inChannels) => Winograd43.Points * MatrixLengthOf(outChannels, inChannels) * sizeof(float);

    internal static void CheckFilters(ConvolutionWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.KernelHeight != 3 || weights.KernelWidth != 3)
            throw new ArgumentException($"Winograd F(4x4, 3x3) needs 3x3 filters, got {weights.KernelHeight}x{weights.KernelWidth}.", nameof(weights));
    }

    /// <summary>
    /// The reference twin of <see cref="Transform"/>: U = G g Gᵀ per (o, ci) in double with the matrices of
    /// <see cref="Winograd43"/>, rounded once to float, into <paramref name="destination"/> (<see cref="ByteSizeOf"/> bytes;
    /// lanes past Cout get zero). Reads g[ky, kx] of each (o, ci) from the packed 3x3 matrix (column (ky*3 + kx)*Cin + ci).
    /// </summary>
    public static void TransformReference(ConvolutionWeights weights, float* destination)
    {
        CheckFilters(weights);
        const int width = PackedMatrix.PanelWidth;
        int cin = weights.InChannels, panels = weights.Matrix.PanelCount;
        long matrixLength = MatrixLengthOf(weights.OutChannels, cin);
        var g = new double[3, 3];
        for (int panel = 0; panel < panels; panel++)
        for (int ci = 0; ci < cin; ci++)
        for (int lane = 0; lane < width; lane++)
        {
            long src = (long)panel * width * 9 * cin + (long)ci * width + lane;
            for (int tap = 0; tap < 9; tap++) g[tap / 3, tap % 3] = Weight(weights.Matrix, src + (long)tap * cin * width);
            var u = Winograd43.Sandwich(Winograd43.G, g, Winograd43.G); // [6, 6]
            float* dst = destination + ((long)panel * cin + ci) * width + lane;
            for (int xi = 0; xi < Winograd43.Points; xi++) dst[xi * matrixLength] = (float)u[xi / 6, xi % 6];
        }
    }

    /// <summary>Element <paramref name="index"/> of the packed storage, widened to fp32 if it is stored in 16 bits.</summary>
    private static float Weight(PackedMatrix matrix, long index) => matrix.Precision == WeightPrecision.Float32
        ? ((float*)matrix.Storage)[index]
        : WeightConversion.WidenReference(((ushort*)matrix.Storage)[index], matrix.Precision);

    /// <summary>U_ξ[o, ci] (slow; reference kernels and tests).</summary>
    public float this[int xi, int o, int ci]
        => Data[xi * MatrixLength + ((long)(o / PackedMatrix.PanelWidth) * InChannels + ci) * PackedMatrix.PanelWidth + o % PackedMatrix.PanelWidth];

    public void Dispose()
    {
        NativeBuffers.Free(_data);
        _data = null;
        GC.SuppressFinalize(this);
    }

    ~WinogradWeights()
    {
        NativeBuffers.Free(_data);
    }
}
