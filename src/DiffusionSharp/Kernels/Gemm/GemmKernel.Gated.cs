using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Elementwise;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// GEGLU / SwiGLU folded into the projection GEMM's epilogue:
/// <code>
/// C [M, inner] = (A · Wvᵀ + bv) ⊙ act(A · Wgᵀ + bg)
/// </code>
/// with W = [Wv; Wg] the feed-forward's <c>net.0.proj</c> ([2·inner, K], value rows first). The rows of W (and the bias)
/// are stored interleaved in blocks of <see cref="GateBlock"/> (<see cref="InterleaveGate"/>): 16 value rows, then the 16
/// gate rows of the same outputs, and so on, so every 32-wide panel holds both halves of 16 outputs. The epilogue of
/// each 12 x 32 register tile then writes 16 gated outputs, and the [M, 2·inner] projection never reaches memory: the
/// one-pass GEGLU after the GEMM wrote it (M·2·inner floats) and read it back, then wrote M·inner.
/// The same interleaved layout, viewed as [M·inner/16, 32], is what the unfused twins and the reference read.
/// </summary>
public static unsafe partial class GemmKernel
{
    /// <summary>Outputs per value/gate block of the interleaved layout: half a panel.</summary>
    public const int GateBlock = PackedMatrix.PanelWidth / 2;

    /// <summary>
    /// Reorders rows [2·inner, ...] (value rows, then gate rows; each row <paramref name="rowLength"/> floats, 1 for a bias)
    /// into blocks of <see cref="GateBlock"/> value rows followed by the matching gate rows. inner must be a multiple of 16.
    /// </summary>
    public static float[] InterleaveGate(ReadOnlySpan<float> rows, int inner, int rowLength)
    {
        if (inner <= 0 || inner % GateBlock != 0)
            throw new ArgumentException($"A gated projection's inner width must be a positive multiple of {GateBlock}, got {inner}.", nameof(inner));
        if (rows.Length != 2L * inner * rowLength)
            throw new ArgumentException($"A gated projection has {rows.Length} values; [{2 * inner}, {rowLength}] needs {2L * inner * rowLength}.", nameof(rows));
        var result = new float[rows.Length];
        for (int block = 0; block < inner / GateBlock; block++)
        {
            int src = block * GateBlock * rowLength, length = GateBlock * rowLength;
            rows.Slice(src, length).CopyTo(result.AsSpan(2 * src, length));
            rows.Slice(inner * rowLength + src, length).CopyTo(result.AsSpan(2 * src + length, length));
        }
        return result;
    }

    /// <summary>
    /// C [M, N/2] (row stride ldc) = value ⊙ act(gate) of A [M, K] (lda) · Wᵀ + bias, W packed from <see cref="InterleaveGate"/>d
    /// rows [N, K] (N a multiple of 32), bias [N] interleaved the same way (or null). C must not overlap A.
    /// </summary>
    public static void LinearGated(float* a, int lda, int m, PackedMatrix w, float* bias, GateKind gate, float* c, int ldc)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "GEMM row count cannot be negative.");
        if (w.N % PackedMatrix.PanelWidth != 0)
            throw new ArgumentException($"A gated GEMM needs whole value/gate panels: N {w.N} is not a multiple of {PackedMatrix.PanelWidth}.", nameof(w));
        if (lda < w.K || ldc < w.N / 2)
            throw new ArgumentException($"GEMM strides too small: lda {lda} (K {w.K}), ldc {ldc} (N/2 {w.N / 2}).");
        if (m == 0) return;
        if (KernelSettings.UseReference) LinearGatedReference(a, lda, m, w, bias, gate, c, ldc);
        else LinearGated(a, lda, m, w, bias, gate, c, ldc, KernelSettings.BestIsa);
    }

    internal static void LinearGated(float* a, int lda, int m, PackedMatrix w, float* bias, GateKind gate, float* c, int ldc, KernelIsa isa)
    {
        var problem = new Problem<RowMajorRows>(new RowMajorRows(a, lda), m, w.N, w.K, w, 1f, bias, c, ldc, null, 0)
        {
            Gate = gate == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu,
        };
        Run(ref problem, isa);
    }

    /// <summary>The spec: the double-accumulating product into [M, N], then the gated pass in double on its [M·N/32, 32] view.</summary>
    public static void LinearGatedReference(float* a, int lda, int m, PackedMatrix w, float* bias, GateKind gate, float* c, int ldc)
    {
        int half = w.N / 2, blocks = w.N / PackedMatrix.PanelWidth;
        var projected = new float[(long)m * w.N];
        var gated = new float[(long)m * half];
        fixed (float* p = projected, g = gated)
        {
            LinearReference(a, lda, m, w, bias, p, w.N, null, 0);
            Activations.GatedReference(gate, p, m * blocks, GateBlock, g);
            for (int i = 0; i < m; i++)
                new ReadOnlySpan<float>(g + (long)i * half, half).CopyTo(new Span<float>(c + (long)i * ldc, half));
        }
    }

    /// <summary>
    /// c[r, j] = (tile[r, j] + bias[j]) · act(tile[r, 16 + j] + bias[16 + j]) for j &lt; 16: one interleaved panel of a
    /// rows x 32 block into 16 outputs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GatedEpilogue(float* tile, int rows, float* bias, ActivationKind act, float* c, int ldc)
    {
        var valueBias = bias != null ? Vector512.Load(bias) : Vector512<float>.Zero;
        var gateBias = bias != null ? Vector512.Load(bias + GateBlock) : Vector512<float>.Zero;
        for (int r = 0; r < rows; r++)
        {
            float* t = tile + r * MicroKernel.Cols;
            var value = Vector512.Load(t) + valueBias;
            var gate = Vector512.Load(t + GateBlock) + gateBias;
            (value * Activations.Apply(act, gate)).Store(c + (long)r * ldc);
        }
    }
}
