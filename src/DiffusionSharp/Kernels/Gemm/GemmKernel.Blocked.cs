using System.Numerics;
using System.Runtime.CompilerServices;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// Cache-blocked, multi-threaded GEMM driver shared by the linear layer, the convolutions and the unpacked products.
/// <para>
/// C [M, N] = alpha · A [M, K] · B [K, N] + bias + residual, B given as <see cref="PackedMatrix"/>-style panels
/// ([N/32][K][32]). Work is a grid of tiles (up to 96 rows x 512 columns); the scheduler splits the tile list into
/// static contiguous ranges. Per tile and per K block (at most <see cref="MicroKernel.KcMax"/>): the tile's rows of A
/// are copied ("packed") into per-thread scratch at a constant row stride (for a convolution this copy is the im2col
/// gather, so no full im2col ever exists); then for each 32-wide panel, whose K-block slice (at most 64 KB) stays in
/// L1/L2, the micro-kernel runs down the tile's 12-row groups. Partial sums between K blocks live in a per-thread
/// tile buffer; the last block goes through a 12 x 32 stack tile and the epilogue (alpha, bias, residual) writes C,
/// so a residual that aliases C is read before it is overwritten.
/// </para>
/// <para>
/// 16-bit weight panels (<see cref="WeightPrecision"/>) are widened to fp32 and the fp32 micro-kernel runs on them, so
/// the arithmetic, hence every result, is the fp32 path's on the widened weights. When the rows fit one block of tiles
/// (at most 96 rows: GEMV, time embeddings, cross-attention K/V) each tile widens its panel's K-block slice into
/// per-thread scratch (32 x at most 512 floats, the slice the fp32 path streams), once per panel; with more rows every
/// block of rows would widen the same panels again, so the whole matrix is widened once per call, in parallel, into
/// a scratch buffer of the calling thread (fp32 size of the largest such layer: 52 MB for SD 1.5's 1280x10240
/// GEGLU projection). Measured (Zen 5, one core, thread CPU time, fp32 and 16-bit runs alternating in one process,
/// load average 11-15): with every row block widening its panels, fp16 cost 8-11 % and bf16 0-7 % over fp32 at the
/// SD 1.5 shapes; widening the whole matrix once brought that to 0-4 % (4096x320x320, 4096x1280x320, 1024x2560x640,
/// both 3x3 convolutions). 77x320x768 (per-tile, 7 row groups) costs 11 % (fp16) and 4 % (bf16); GEMV 1x1280x1280 is
/// 2.8x (fp16) and 1.9x (bf16) slower: there each widened weight is used once. Not built: micro-kernels that widen
/// in registers — they would widen each weight once per 12-row group, eight times as often as the per-tile widening.
/// </para>
/// <para>
/// Determinism: every output is one FMA chain over k in order (see <see cref="IMicroKernel"/>), then alpha, bias,
/// residual; the tiling never splits K across threads, so results are bitwise identical for any thread count, tile
/// shape and instruction set.
/// </para>
/// <para>
/// Measured (Zen 5, .NET 10, `bench quick`, machine shared; one core timed by CPU time): Linear 4096x320x320
/// 203-209 GFLOP/s (91-92 % of the FMA peak), 4096x1280x320 205-207 (91 %), 1024x640x2560 205-209 (91-92 %),
/// 4096x320x1280 with residual 189-193 (84-85 %), 77x320x768 208-212 (93 %); on two cores 383-416 GFLOP/s (86-93 %
/// of 448). GEMV 1x1280x1280 is weight-stream bound (17-20 %).
/// Not used (by reasoning, not measured): packing A as BLIS's [K][12] — a transpose per tile, while the constant-stride
/// copy already gives one broadcast instruction per row since .NET folds the constant stride into its address.
/// Rejected: splitting K across threads (breaks determinism).
/// </para>
/// </summary>
public static unsafe partial class GemmKernel
{
    private const int MaxGroupsPerTile = 8;
    private const int MaxPanelsPerTile = 16;

    /// <summary>Copies rows [row0, row0 + rows) x columns [k0, k0 + kc) of A into dst (row stride <see cref="MicroKernel.AStride"/>).</summary>
    internal interface IRowSource
    {
        void Pack(int row0, int rows, int k0, int kc, float* dst);
    }

    /// <summary>A row-major in memory (row stride <see cref="Lda"/>).</summary>
    internal readonly struct RowMajorRows(float* a, int lda) : IRowSource
    {
        public readonly float* A = a;
        public readonly int Lda = lda;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Pack(int row0, int rows, int k0, int kc, float* dst)
        {
            float* src = A + (long)row0 * Lda + k0;
            for (int r = 0; r < rows; r++)
                Buffer.MemoryCopy(src + (long)r * Lda, dst + r * MicroKernel.AStride, kc * sizeof(float), kc * sizeof(float));
        }
    }

    /// <summary>One GEMM call: operands, epilogue and the tiling chosen by <see cref="Plan"/>.</summary>
    internal struct Problem<TA> where TA : struct, IRowSource
    {
        public TA Rows;
        public int M, N, K;
        public void* Panels;
        public WeightPrecision Precision;
        public KernelIsa Isa;
        public float Alpha;
        public float* Bias;
        public float* C;
        public int Ldc;
        public float* Residual;
        public int Ldr;

        public int Groups, PanelCount, MBlocks, NBlocks, KBlocks;

        /// <summary>B given as fp32 panels.</summary>
        public Problem(TA rows, int m, int n, int k, float* panels, float alpha, float* bias, float* c, int ldc, float* residual, int ldr)
        {
            Rows = rows; M = m; N = n; K = k; Panels = panels; Precision = WeightPrecision.Float32; Alpha = alpha; Bias = bias;
            C = c; Ldc = ldc; Residual = residual; Ldr = ldr;
        }

        /// <summary>B given as a packed weight matrix of any <see cref="WeightPrecision"/> ([n, k] must be its shape).</summary>
        public Problem(TA rows, int m, int n, int k, PackedMatrix panels, float alpha, float* bias, float* c, int ldc, float* residual, int ldr)
            : this(rows, m, n, k, (float*)panels.Storage, alpha, bias, c, ldc, residual, ldr)
        {
            if (panels.N != n || panels.K != k)
                throw new ArgumentException($"GEMM [{n}, {k}] given a packed matrix of [{panels.N}, {panels.K}].");
            Precision = panels.Precision;
        }
    }

    /// <summary>Runs <paramref name="p"/> on <see cref="ThreadScheduler.Current"/> with the micro-kernel of <paramref name="isa"/>.</summary>
    internal static void Run<TA>(ref Problem<TA> p, KernelIsa isa) where TA : struct, IRowSource
    {
        if (p.M == 0 || p.N == 0) return;
        var scheduler = ThreadScheduler.Current;
        Plan(ref p, scheduler.ThreadCount);
        p.Isa = isa;
        if (p.Precision != WeightPrecision.Float32 && p.MBlocks > 1)
        {
            // Every block of rows would widen the same panels again: widen the whole matrix once, in parallel, instead.
            var widen = new WidenArgs
            {
                Source = (ushort*)p.Panels, PanelLength = (long)MicroKernel.Cols * p.K, Precision = p.Precision, Isa = isa,
                Destination = Scratch.Floats(ScratchSlot.GemmWidenedMatrix, (long)p.PanelCount * MicroKernel.Cols * p.K),
            };
            scheduler.For(p.PanelCount, &WidenPanel, &widen);
            p.Panels = widen.Destination;
            p.Precision = WeightPrecision.Float32;
        }
        void* context = Unsafe.AsPointer(ref p);
        int tiles = p.MBlocks * p.NBlocks;
        switch (isa)
        {
            case KernelIsa.Avx512: scheduler.For(tiles, &Tile<TA, Avx512MicroKernel>, context); break;
            case KernelIsa.Avx2: scheduler.For(tiles, &Tile<TA, Avx2MicroKernel>, context); break;
            default: scheduler.For(tiles, &Tile<TA, PortableMicroKernel>, context); break;
        }
    }

    private struct WidenArgs
    {
        public ushort* Source; public float* Destination; public long PanelLength; public WeightPrecision Precision; public KernelIsa Isa;
    }

    private static void WidenPanel(void* context, int panel)
    {
        ref WidenArgs a = ref Unsafe.AsRef<WidenArgs>(context);
        WeightConversion.Widen(a.Source + panel * a.PanelLength, a.PanelLength, a.Precision, a.Destination + panel * a.PanelLength, a.Isa);
    }

    /// <summary>
    /// Tiling: tiles of at most 8 row groups x 16 panels; at least two tiles per thread when the shape allows
    /// (splitting N first, so small-M products such as GEMV share the weight stream), and a tile-row count that is
    /// a multiple of the thread count so the static partition is balanced.
    /// </summary>
    private static void Plan<TA>(ref Problem<TA> p, int threads) where TA : struct, IRowSource
    {
        int groups = (p.M + MicroKernel.Rows - 1) / MicroKernel.Rows;
        int panels = (p.N + MicroKernel.Cols - 1) / MicroKernel.Cols;
        int mBlocks = (groups + MaxGroupsPerTile - 1) / MaxGroupsPerTile;
        int nBlocks = (panels + MaxPanelsPerTile - 1) / MaxPanelsPerTile;
        int want = threads == 1 ? 1 : 2 * threads;
        if (mBlocks * nBlocks < want) nBlocks = Math.Min(panels, (want + mBlocks - 1) / mBlocks);
        if (mBlocks * nBlocks < want) mBlocks = Math.Min(groups, (want + nBlocks - 1) / nBlocks);
        if (mBlocks >= threads && mBlocks % threads != 0) mBlocks = Math.Min(groups, (mBlocks + threads - 1) / threads * threads);
        p.Groups = groups;
        p.PanelCount = panels;
        p.MBlocks = mBlocks;
        p.NBlocks = nBlocks;
        p.KBlocks = (p.K + MicroKernel.KcMax - 1) / MicroKernel.KcMax;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TA, TK>(void* context, int index) where TA : struct, IRowSource where TK : struct, IMicroKernel
    {
        ref Problem<TA> p = ref Unsafe.AsRef<Problem<TA>>(context);
        var (g0, g1) = ThreadScheduler.Partition(p.Groups, p.MBlocks, index / p.NBlocks);
        var (p0, p1) = ThreadScheduler.Partition(p.PanelCount, p.NBlocks, index % p.NBlocks);
        if (g0 == g1 || p0 == p1) return;
        int row0 = g0 * MicroKernel.Rows;
        int rows = Math.Min(p.M, g1 * MicroKernel.Rows) - row0;
        int paddedRows = (g1 - g0) * MicroKernel.Rows;
        int ldp = (p1 - p0) * MicroKernel.Cols;
        float* packed = Scratch.Floats(ScratchSlot.GemmA, (long)paddedRows * MicroKernel.AStride);
        float* partial = p.KBlocks > 1 ? Scratch.Floats(ScratchSlot.GemmPartial, (long)paddedRows * ldp) : null;
        float* tile = stackalloc float[MicroKernel.Rows * MicroKernel.Cols];
        float* widened = p.Precision == WeightPrecision.Float32 ? null : Scratch.Floats(ScratchSlot.GemmWidened, (long)MicroKernel.KcMax * MicroKernel.Cols);
        for (int kb = 0; kb < p.KBlocks; kb++)
        {
            var (k0, k1) = ThreadScheduler.Partition(p.K, p.KBlocks, kb);
            int kc = k1 - k0;
            p.Rows.Pack(row0, rows, k0, kc, packed);
            for (int r = rows; r < paddedRows; r++) new Span<float>(packed + r * MicroKernel.AStride, kc).Clear();
            bool last = kb == p.KBlocks - 1;
            for (int panel = p0; panel < p1; panel++)
            {
                long slice = ((long)panel * p.K + k0) * MicroKernel.Cols;
                float* b = (float*)p.Panels + slice;
                if (widened != null)
                {
                    WeightConversion.Widen((ushort*)p.Panels + slice, (long)kc * MicroKernel.Cols, p.Precision, widened, p.Isa);
                    b = widened;
                }
                int col0 = panel * MicroKernel.Cols;
                int cols = Math.Min(MicroKernel.Cols, p.N - col0);
                for (int g = g0; g < g1; g++)
                {
                    int r0 = (g - g0) * MicroKernel.Rows;
                    int groupRows = Math.Min(MicroKernel.Rows, rows - r0);
                    float* a = packed + r0 * MicroKernel.AStride;
                    float* part = partial == null ? null : partial + (long)r0 * ldp + (col0 - p0 * MicroKernel.Cols);
                    float* init = kb == 0 ? null : part;
                    if (!last)
                    {
                        TK.Compute(groupRows, cols, a, b, MicroKernel.Cols, kc, init, ldp, part, ldp);
                        continue;
                    }
                    TK.Compute(groupRows, cols, a, b, MicroKernel.Cols, kc, init, ldp, tile, MicroKernel.Cols);
                    int row = row0 + r0;
                    Epilogue(tile, groupRows, cols, p.Alpha, p.Bias != null ? p.Bias + col0 : null,
                        p.C + (long)row * p.Ldc + col0, p.Ldc,
                        p.Residual != null ? p.Residual + (long)row * p.Ldr + col0 : null, p.Ldr);
                }
            }
        }
    }

    /// <summary>c[r, j] = alpha · tile[r, j] (+ bias[j]) (+ residual[r, j]) for a rows x cols block; alpha 1 skips the multiply.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(float* tile, int rows, int cols, float alpha, float* bias, float* c, int ldc, float* residual, int ldr)
    {
        for (int r = 0; r < rows; r++)
        {
            float* t = tile + r * MicroKernel.Cols;
            float* dst = c + (long)r * ldc;
            float* res = residual != null ? residual + (long)r * ldr : null;
            int j = 0;
            for (; j <= cols - Vector<float>.Count; j += Vector<float>.Count)
            {
                var v = Unsafe.ReadUnaligned<Vector<float>>(t + j);
                if (alpha != 1f) v *= alpha;
                if (bias != null) v += Unsafe.ReadUnaligned<Vector<float>>(bias + j);
                if (res != null) v += Unsafe.ReadUnaligned<Vector<float>>(res + j);
                Unsafe.WriteUnaligned(dst + j, v);
            }
            for (; j < cols; j++)
            {
                float v = t[j];
                if (alpha != 1f) v *= alpha;
                if (bias != null) v += bias[j];
                if (res != null) v += res[j];
                dst[j] = v;
            }
        }
    }
}
