using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Kernels.Attention;

/// <summary>
/// The unfused twins of the flash kernel, for measuring what its fusions buy (<see cref="Fusions"/>); non-causal only
/// (the causal text encoder always runs the flash kernel). Both are the same function as the flash kernel, built from
/// the GEMM driver and a row-softmax pass:
/// <list type="bullet">
/// <item><see cref="ForwardPartialSoftmax"/> (<see cref="Fusion.FlashAttention"/> off): the paper's partially fused
/// softmax. Per (image, head, block of 96 queries): S = scale·Q Kᵀ over all keys into a [96, Tk] buffer (1.5 MB at
/// Tk = 4096), then the softmax rows in one pass with the exact max first, then O = P V.</item>
/// <item><see cref="ForwardScoreMatrix"/> (<see cref="Fusion.Softmax"/> off): what a naive engine runs, every head's
/// whole [Tq, Tk] score matrix (batch·heads·Tq·Tk floats), a softmax pass over all of them, then the value products.
/// Refused above <see cref="MaxScoreMatrixBytes"/>: SD 1.5 at 256x256 (2 x 8 heads x 1024²: 64 MiB) runs, 512x512
/// (1 GiB) does not.</item>
/// </list>
/// Each GEMM call packs its Kᵀ or V again (Tk·d copies against Tk·d·2·rows flops): part of what the twins cost.
/// </summary>
public static unsafe partial class AttentionKernel
{
    /// <summary>The largest score matrix <see cref="ForwardScoreMatrix"/> allocates: 256 MiB.</summary>
    public const long MaxScoreMatrixBytes = 256L << 20;

    /// <summary>Query rows per block of the partially fused softmax (as the flash kernel's).</summary>
    private const int PartialQueryBlock = QueryBlock;

    /// <summary>The paper's partially fused softmax: whole score rows of a query block, exact max, then P·V.</summary>
    public static void ForwardPartialSoftmax(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim,
        float scale, AttentionActivation activation)
    {
        Validate(ops, batch, heads, tq, tk, headDim, causal: false);
        using var scores = Tensor.Create(Math.Min(PartialQueryBlock, tq), tk); // [96, Tk]
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            float* k = ops.K + (long)b * tk * ops.Ldk + (long)h * headDim;
            float* v = ops.V + (long)b * tk * ops.Ldv + (long)h * headDim;
            for (int q0 = 0; q0 < tq; q0 += PartialQueryBlock)
            {
                int rows = Math.Min(PartialQueryBlock, tq - q0);
                float* q = ops.Q + ((long)b * tq + q0) * ops.Ldq + (long)h * headDim;
                float* o = ops.O + ((long)b * tq + q0) * ops.Ldo + (long)h * headDim;
                GemmKernel.MultiplyTransposed(q, ops.Ldq, k, ops.Ldk, scores.Data, tk, rows, tk, headDim, scale); // [rows, Tk]
                WeightRows(scores.Data, rows, tk, activation);                                                  // [rows, Tk]
                GemmKernel.Multiply(scores.Data, tk, v, ops.Ldv, o, ops.Ldo, rows, headDim, tk, 1f);            // [rows, d]
            }
        }
    }

    /// <summary>The naive engine's attention: every head's whole [Tq, Tk] score matrix, one softmax pass, then P·V.</summary>
    public static void ForwardScoreMatrix(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim,
        float scale, AttentionActivation activation)
    {
        Validate(ops, batch, heads, tq, tk, headDim, causal: false);
        long bytes = (long)batch * heads * tq * tk * sizeof(float);
        if (bytes > MaxScoreMatrixBytes)
            throw new InvalidOperationException(
                $"Attention with the softmax fusion off would allocate {bytes >> 20} MiB of scores ({batch} x {heads} heads x {tq} x {tk}); " +
                $"the unfused twin runs only up to {MaxScoreMatrixBytes >> 20} MiB (SD 1.5 at 256x256). Leave the softmax fusion on at this size.");
        using var scores = Tensor.Create(batch * heads, tq, tk); // [B*heads, Tq, Tk]
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            float* s = scores.Data + ((long)b * heads + h) * tq * tk;
            GemmKernel.MultiplyTransposed(ops.Q + (long)b * tq * ops.Ldq + (long)h * headDim, ops.Ldq,
                ops.K + (long)b * tk * ops.Ldk + (long)h * headDim, ops.Ldk, s, tk, tq, tk, headDim, scale); // [Tq, Tk]
        }
        WeightRows(scores.Data, batch * heads * tq, tk, activation); // [B*heads, Tq, Tk]
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            float* s = scores.Data + ((long)b * heads + h) * tq * tk;
            GemmKernel.Multiply(s, tk, ops.V + (long)b * tk * ops.Ldv + (long)h * headDim, ops.Ldv,
                ops.O + (long)b * tq * ops.Ldo + (long)h * headDim, ops.Ldo, tq, headDim, tk, 1f); // [Tq, d]
        }
    }

    /// <summary>Scores [rows, n] (contiguous) to attention weights in place: softmax with the row max subtracted, or relu(s) / n.</summary>
    private static void WeightRows(float* s, int rows, int n, AttentionActivation activation)
    {
        var body = new WeightRowsBody { S = s, N = n, Relu = activation == AttentionActivation.Relu };
        RangeParallel.For(rows, Math.Max(1, RangeParallel.DefaultGrain / n), ref body);
    }

    private struct WeightRowsBody : RangeParallel.IRangeBody
    {
        public float* S;
        public int N;
        public bool Relu;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            for (long r = start; r < end; r++)
            {
                float* row = S + r * N;
                if (Relu)
                {
                    float inv = 1f / N;
                    for (int j = 0; j < N; j++) row[j] = MathF.Max(row[j], 0f) * inv;
                    continue;
                }
                var vmax = Vector512.Create(float.NegativeInfinity);
                int j0 = 0;
                for (; j0 <= N - 16; j0 += 16) vmax = Vector512.Max(vmax, Vector512.Load(row + j0));
                float max = float.NegativeInfinity;
                for (int i = 0; i < 16; i++) max = MathF.Max(max, vmax.GetElement(i));
                for (int j = j0; j < N; j++) max = MathF.Max(max, row[j]);
                var vm = Vector512.Create(max);
                var vsum = Vector512<float>.Zero;
                int k = 0;
                for (; k <= N - 16; k += 16)
                {
                    var e = VectorMath.Exp(Vector512.Load(row + k) - vm);
                    e.Store(row + k);
                    vsum += e;
                }
                float sum = Vector512.Sum(vsum);
                for (; k < N; k++)
                {
                    row[k] = VectorMath.Exp(row[k] - max);
                    sum += row[k];
                }
                var inverse = Vector512.Create(1f / sum);
                k = 0;
                for (; k <= N - 16; k += 16) (Vector512.Load(row + k) * inverse).Store(row + k);
                for (; k < N; k++) row[k] *= 1f / sum;
            }
        }
    }
}
