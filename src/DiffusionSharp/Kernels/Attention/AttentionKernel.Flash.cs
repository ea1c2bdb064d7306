using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Attention;

/// <summary>
/// FlashAttention-style tiles on the CPU. A task is (batch, head, block of 96 queries). Per key block of 512:
/// S = Q_blk · K_blkᵀ through the GEMM micro-kernel (Q rows, pre-multiplied by the scale, packed at the micro-kernel's
/// constant stride; Kᵀ packed once per head into 32-key panels), online softmax on S in place (running row max m and
/// sum l; earlier output rescaled by exp(m_old - m_new)), then O += P · V_blk through the same micro-kernel with P read
/// straight from the S tile.
/// Memory per thread: the head's packed Kᵀ and V (Tk·d each) plus 96 x 528 floats of scores, never [Tq, Tk]
/// (SD 1.5's 64x64 level: 1.4 MB instead of 64 MB per head). ReLU attention needs no running max: O += relu(S)·V, / Tk.
/// Causal rows stop at their diagonal; key blocks past a query block's last row are skipped.
/// Kᵀ and V are packed by each thread for each head it works on (static partition: once per head, plus once per
/// thread boundary), costing Tk·d copies against Tq·Tk·d·4 flops.
/// Measured (Zen 5, .NET 10, machine shared, two runs): SD 1.5 self-attention 4096x4096, 8 heads x 40: 122-134
/// GFLOP/s on one core (54-59 % of FMA peak; d = 40 fills 40 of 48 lanes and gives S only 40 k-steps), 245 on two
/// (55 %); 1024x1024 x 80: 69-70 %; cross-attention 4096x77: 34-40 %. Changed after measuring: IEEE <c>Vector512.Max</c> in the row max (a
/// vrangeps + 2 vfixupimmps chain) -> MaxNative; scalar exp for row tails -> one masked vector; 256-key blocks ->
/// 512 (1.6x self, 2x cross). Rejected: the partially fused two-pass softmax (whole score rows of a query block in
/// L2, exact max first) — simpler, but its [96, Tk] tile grows with the sequence, and the online rescale costs
/// under 1 % here.
/// A causal row never reads a masked key's v: per 12-row group only the keys all its rows see go through the
/// micro-kernel, and the diagonal triangle (at most 11 keys) is added row by row.
/// </summary>
public static unsafe partial class AttentionKernel
{
    private const int QueryBlock = 8 * MicroKernel.Rows;
    private const int KeyBlock = MicroKernel.KcMax;

    private static int s_calls;
    [ThreadStatic] private static long t_packedHead;

    private struct FlashArgs
    {
        public AttentionOperands Ops;
        public int Heads, Tq, Tk, D, QueryBlocks, Call;
        public float Scale;
        public AttentionActivation Act;
        public bool Causal;
    }

    internal static void ForwardFlash(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim,
        float scale, AttentionActivation activation, bool causal, KernelIsa isa)
    {
        var args = new FlashArgs
        {
            Ops = ops, Heads = heads, Tq = tq, Tk = tk, D = headDim, Scale = scale, Act = activation, Causal = causal,
            QueryBlocks = (tq + QueryBlock - 1) / QueryBlock, Call = Interlocked.Increment(ref s_calls),
        };
        int tasks = checked(batch * heads * args.QueryBlocks);
        var scheduler = ThreadScheduler.Current;
        switch (isa)
        {
            case KernelIsa.Avx512: scheduler.For(tasks, &QueryBlockTask<Avx512MicroKernel>, &args); break;
            case KernelIsa.Avx2: scheduler.For(tasks, &QueryBlockTask<Avx2MicroKernel>, &args); break;
            default: scheduler.For(tasks, &QueryBlockTask<PortableMicroKernel>, &args); break;
        }
    }

    /// <summary>Floats per packed V row and per output-accumulator row: d rounded up to 16 (what the micro-kernel touches).</summary>
    private static int ValueStride(int d) => (d + 15) & ~15;

    /// <summary>Per-thread scratch one task needs, in floats: what keeps memory independent of Tq.</summary>
    internal static long ScratchFloats(int tk, int headDim)
    {
        int dChunks = (headDim + MicroKernel.KcMax - 1) / MicroKernel.KcMax;
        long keys = (long)(tk + MicroKernel.Cols - 1) / MicroKernel.Cols * MicroKernel.Cols * headDim;
        long values = (long)tk * ValueStride(headDim);
        long queries = (long)dChunks * QueryBlock * MicroKernel.AStride;
        return keys + values + queries + QueryBlock * MicroKernel.AStride + QueryBlock * ValueStride(headDim);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QueryBlockTask<TK>(void* context, int index) where TK : struct, IMicroKernel
    {
        ref FlashArgs a = ref Unsafe.AsRef<FlashArgs>(context);
        int bh = index / a.QueryBlocks;
        int b = bh / a.Heads, h = bh % a.Heads;
        int q0 = index % a.QueryBlocks * QueryBlock;
        int rows = Math.Min(QueryBlock, a.Tq - q0);
        int d = a.D, vs = ValueStride(d);
        int dChunks = (d + MicroKernel.KcMax - 1) / MicroKernel.KcMax;

        int keyPanels = (a.Tk + MicroKernel.Cols - 1) / MicroKernel.Cols;
        float* kt = Scratch.Floats(ScratchSlot.AttentionKeys, (long)keyPanels * MicroKernel.Cols * d);
        float* v = Scratch.Floats(ScratchSlot.AttentionValues, (long)a.Tk * vs);
        long head = ((long)a.Call << 32) | (uint)bh;
        if (t_packedHead != head)
        {
            PackHead(ref a, b, h, kt, v);
            t_packedHead = head;
        }

        float* q = Scratch.Floats(ScratchSlot.AttentionQueries, (long)dChunks * QueryBlock * MicroKernel.AStride);
        PackQueries(ref a, b, h, q0, rows, dChunks, q);
        float* s = Scratch.Floats(ScratchSlot.AttentionScores, (long)QueryBlock * MicroKernel.AStride);
        float* o = Scratch.Floats(ScratchSlot.AttentionOutput, (long)QueryBlock * vs);
        float* rowMax = stackalloc float[QueryBlock];
        float* rowSum = stackalloc float[QueryBlock];
        for (int r = 0; r < rows; r++) { rowMax[r] = float.NegativeInfinity; rowSum[r] = 0f; }

        int keyEnd = a.Causal ? Math.Min(a.Tk, q0 + rows) : a.Tk;
        for (int k0 = 0; k0 < keyEnd; k0 += KeyBlock)
        {
            int kc = Math.Min(KeyBlock, keyEnd - k0);
            Scores<TK>(q, rows, dChunks, d, kt + (long)k0 * d, kc, s);
            bool first = k0 == 0;
            for (int r = 0; r < rows; r++)
            {
                float* row = s + r * MicroKernel.AStride;
                int visible = a.Causal ? Math.Clamp(q0 + r + 1 - k0, 0, kc) : kc;
                if (a.Act == AttentionActivation.Softmax)
                {
                    float alpha = SoftmaxBlock(row, visible, ref rowMax[r], ref rowSum[r]);
                    if (!first && alpha != 1f) Scale(o + r * vs, vs, alpha);
                }
                else
                {
                    ReluBlock(row, visible);
                }
                new Span<float>(row + visible, kc - visible).Clear();
            }
            for (int g = 0; g < rows; g += MicroKernel.Rows)
            {
                int groupRows = Math.Min(MicroKernel.Rows, rows - g);
                // Keys every row of the group may see go through the micro-kernel; on the diagonal the few keys
                // only later rows see are added row by row, so a masked key's v is never touched (not even 0·v).
                int shared = a.Causal ? Math.Min(kc, q0 + g + 1 - k0) : kc;
                int own = a.Causal ? Math.Min(kc, q0 + g + groupRows - k0) : kc;
                if (shared > 0)
                {
                    for (int c0 = 0; c0 < d; c0 += MicroKernel.Cols)
                    {
                        float* acc = o + g * vs + c0;
                        TK.Compute(groupRows, Math.Min(MicroKernel.Cols, d - c0), s + g * MicroKernel.AStride,
                            v + (long)k0 * vs + c0, vs, shared, first ? null : acc, vs, acc, vs);
                    }
                }
                for (int j = Math.Max(shared, 0); j < own; j++)
                {
                    float* vj = v + (long)(k0 + j) * vs;
                    for (int r = g + Math.Max(0, k0 + j - q0 - g); r < g + groupRows; r++)
                        Axpy(s[r * MicroKernel.AStride + j], vj, o + r * vs, vs);
                }
            }
        }

        for (int r = 0; r < rows; r++)
        {
            float norm = a.Act == AttentionActivation.Softmax ? rowSum[r] : a.Tk;
            float* dst = a.Ops.O + ((long)b * a.Tq + q0 + r) * a.Ops.Ldo + (long)h * d;
            Scale(o + r * vs, dst, d, 1f / norm);
        }
    }

    /// <summary>Kᵀ of one head as 32-key panels [Tk/32][d][32] (zero past Tk), and V as rows [Tk][vs] (zero past d).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackHead(ref FlashArgs a, int b, int h, float* kt, float* v)
    {
        int d = a.D, vs = ValueStride(d), cols = MicroKernel.Cols;
        float* k = a.Ops.K + (long)b * a.Tk * a.Ops.Ldk + (long)h * d;
        int keyPanels = (a.Tk + cols - 1) / cols;
        for (int p = 0; p < keyPanels; p++)
        {
            float* panel = kt + (long)p * cols * d;
            int keys = Math.Min(cols, a.Tk - p * cols);
            if (keys < cols) new Span<float>(panel, cols * d).Clear();
            for (int j = 0; j < keys; j++)
            {
                float* src = k + (long)(p * cols + j) * a.Ops.Ldk;
                for (int c = 0; c < d; c++) panel[c * cols + j] = src[c];
            }
        }
        float* vsrc = a.Ops.V + (long)b * a.Tk * a.Ops.Ldv + (long)h * d;
        for (int j = 0; j < a.Tk; j++)
        {
            float* dst = v + (long)j * vs;
            Buffer.MemoryCopy(vsrc + (long)j * a.Ops.Ldv, dst, d * sizeof(float), d * sizeof(float));
            new Span<float>(dst + d, vs - d).Clear();
        }
    }

    /// <summary>
    /// The block's query rows times the scale, in chunks of d at most <see cref="MicroKernel.KcMax"/> wide:
    /// [dChunks][96][AStride], zero rows past the block. Scaling q (96·d products) instead of s (96·Tk) makes the
    /// scores arrive scaled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackQueries(ref FlashArgs a, int b, int h, int q0, int rows, int dChunks, float* q)
    {
        int d = a.D;
        for (int chunk = 0; chunk < dChunks; chunk++)
        {
            int c0 = chunk * MicroKernel.KcMax, width = Math.Min(MicroKernel.KcMax, d - c0);
            float* block = q + (long)chunk * QueryBlock * MicroKernel.AStride;
            for (int r = 0; r < QueryBlock; r++)
            {
                float* dst = block + r * MicroKernel.AStride;
                if (r < rows)
                {
                    float* src = a.Ops.Q + ((long)b * a.Tq + q0 + r) * a.Ops.Ldq + (long)h * d + c0;
                    Scale(src, dst, width, a.Scale);
                }
                else
                {
                    new Span<float>(dst, width).Clear();
                }
            }
        }
    }

    /// <summary>s[r, j] = (scale·q_r) · k_(k0+j) for the block's rows and kc keys, into the score tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores<TK>(float* q, int rows, int dChunks, int d, float* ktBlock, int kc, float* s) where TK : struct, IMicroKernel
    {
        for (int g = 0; g < rows; g += MicroKernel.Rows)
        {
            int groupRows = Math.Min(MicroKernel.Rows, rows - g);
            for (int j0 = 0; j0 < kc; j0 += MicroKernel.Cols)
            {
                float* panel = ktBlock + (long)j0 * d;
                float* dst = s + g * MicroKernel.AStride + j0;
                for (int chunk = 0; chunk < dChunks; chunk++)
                {
                    int c0 = chunk * MicroKernel.KcMax, width = Math.Min(MicroKernel.KcMax, d - c0);
                    TK.Compute(groupRows, Math.Min(MicroKernel.Cols, kc - j0),
                        q + (long)chunk * QueryBlock * MicroKernel.AStride + g * MicroKernel.AStride,
                        panel + c0 * MicroKernel.Cols, MicroKernel.Cols, width,
                        chunk == 0 ? null : dst, MicroKernel.AStride, dst, MicroKernel.AStride);
                }
            }
        }
    }

    /// <summary>
    /// Online softmax step for one row of n (already scaled) scores: m' = max(m, max row); row = exp(row - m');
    /// l = l · exp(m - m') + sum row. Returns exp(m - m'), the factor for the output accumulated so far.
    /// The max uses the native instruction (no NaN fix-ups): a NaN score still reaches exp and makes l, and so the
    /// output row, NaN, as in the reference. The row must have room up to n rounded up to 16 (the score tile does).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float SoftmaxBlock(float* row, int n, ref float m, ref float l)
    {
        if (n == 0) return 1f;
        var negInf = Vector512.Create(float.NegativeInfinity);
        var max0 = negInf;
        var max1 = negInf;
        int full = n & ~15;
        int j = 0;
        for (; j <= full - 32; j += 32)
        {
            max0 = Vector512.MaxNative(max0, Vector512.Load(row + j));
            max1 = Vector512.MaxNative(max1, Vector512.Load(row + j + 16));
        }
        if (j < full) max0 = Vector512.MaxNative(max0, Vector512.Load(row + j));
        var tailMask = TailMask(n - full);
        if (full < n) max1 = Vector512.MaxNative(max1, Vector512.ConditionalSelect(tailMask, Vector512.Load(row + full), negInf));
        float mNew = MathF.Max(m, HorizontalMax(Vector512.MaxNative(max0, max1)));
        var vm = Vector512.Create(mNew);
        var vsum = Vector512<float>.Zero;
        for (j = 0; j < full; j += 16)
        {
            var e = VectorMath.Exp(Vector512.Load(row + j) - vm);
            e.Store(row + j);
            vsum += e;
        }
        if (full < n)
        {
            // The tail as one vector: lanes past n read the row's padding and become exp(-inf) = 0.
            var e = VectorMath.Exp(Vector512.ConditionalSelect(tailMask, Vector512.Load(row + full), negInf) - vm);
            e.Store(row + full);
            vsum += e;
        }
        float alpha = float.IsNegativeInfinity(m) ? 0f : VectorMath.Exp(m - mNew);
        l = l * alpha + Vector512.Sum(vsum);
        m = mNew;
        return alpha;
    }

    /// <summary>All-ones in lanes [0, count), zero elsewhere.</summary>
    private static Vector512<float> TailMask(int count)
        => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    private static float HorizontalMax(Vector512<float> v)
    {
        var v256 = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        var v128 = Vector128.MaxNative(v256.GetLower(), v256.GetUpper());
        v128 = Vector128.MaxNative(v128, Vector128.Shuffle(v128, Vector128.Create(2, 3, 0, 1)));
        v128 = Vector128.MaxNative(v128, Vector128.Shuffle(v128, Vector128.Create(1, 0, 3, 2)));
        return v128.ToScalar();
    }

    /// <summary>row = relu(row) for n (already scaled) scores, the tail as one vector; NaN stays NaN, as Math.Max in the reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReluBlock(float* row, int n)
    {
        for (int j = 0; j < n; j += 16) Vector512.Max(Vector512.Load(row + j), Vector512<float>.Zero).Store(row + j);
    }

    /// <summary>y = fma(alpha, x, y), n elements: one more step of the same per-output FMA chain the micro-kernel runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Axpy(float alpha, float* x, float* y, int n)
    {
        var va = Vector512.Create(alpha);
        int j = 0;
        for (; j <= n - 16; j += 16) Vector512.FusedMultiplyAdd(va, Vector512.Load(x + j), Vector512.Load(y + j)).Store(y + j);
        for (; j < n; j++) y[j] = MathF.FusedMultiplyAdd(alpha, x[j], y[j]);
    }

    private static void Scale(float* x, int n, float factor) => Scale(x, x, n, factor);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(float* x, float* y, int n, float factor)
    {
        var f = Vector512.Create(factor);
        int j = 0;
        for (; j <= n - 16; j += 16) (Vector512.Load(x + j) * f).Store(y + j);
        for (; j < n; j++) y[j] = x[j] * factor;
    }
}
