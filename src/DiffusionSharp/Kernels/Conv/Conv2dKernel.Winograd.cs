using System.Numerics;
using System.Runtime.CompilerServices;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// 3x3 stride-1 convolution by Winograd F(4x4, 3x3) (<see cref="Winograd43"/>) over channels-last data, any zero
/// padding. The output is cut into 4x4 tiles (row-major over batch, tile row, tile column; partial tiles at the right
/// and bottom edges are computed whole and only their in-image pixels written). A task is a block of at most 96 tiles
/// x a range of 32-wide output-channel panels; per input-channel block of at most 512 (the GEMM's K block) it
/// <list type="number">
/// <item>transforms each tile's 6x6 input window, Bᵀ d B, into V_ξ [tiles, Cin block] for the 36 points ξ (per-thread
/// scratch at the micro-kernel's A stride: the packed A of 36 GEMMs, no im2col, no full transformed tensor);</item>
/// <item>runs M_ξ [tiles, Cout] (+)= V_ξ · U_ξ for each ξ through the GEMM micro-kernel, U_ξ the transformed filters
/// (<see cref="WinogradWeights"/>, made per call or in advance) — 36 multiply-adds per tile and channel pair instead of
/// the direct convolution's 144;</item>
/// </list>
/// then Aᵀ M A per tile and output channel, with bias, a per-image bias (the time embedding) and residual folded into the
/// write of y (residual may alias y).
/// Per task the scratch is 36 x 96 x 528 floats of V (7.3 MB) and 36 x 96 x (panels x 32) of M; each V_ξ slice
/// (200 KB) stays in L2 while all its panels are multiplied.
/// Determinism: each output's value depends only on its tile's input, the fixed 512-channel K blocks and the fixed
/// transform sums (no FMA contraction in the transforms, vector width fixed per process) — bitwise the same for any
/// thread count or task split. Accuracy: fp32 transforms add rounding the direct convolution does not have; measured
/// error and the NaN behaviour (a non-finite input spreads over the whole tile) are in docs/KERNELS.md.
/// </summary>
public static unsafe partial class Conv2dKernel
{
    /// <summary>Row groups of <see cref="MicroKernel.Rows"/> tiles per task: 96 tiles, as the GEMM driver's 96-row tiles.</summary>
    private const int WinogradMaxGroupsPerTask = 8;

    /// <summary>
    /// y = conv2d(x, W) + bias (+ imageBias [B, Cout]) (+ residual) by Winograd F(4x4, 3x3), W the layer's 3x3 filters
    /// (fp32 or 16-bit): they are transformed at every call (<see cref="WinogradWeights.Transform"/>) into the calling
    /// thread's <see cref="ScratchSlot.WinogradFilters"/> buffer, which grows to the largest layer this thread has run and
    /// is reused by every layer after it, so Winograd's filter memory is one layer's, not the model's. Per-thread, so
    /// concurrent callers on different threads do not share it. The geometry must be a 3x3 stride-1 convolution
    /// (<see cref="SupportsWinograd"/>). Same layout and aliasing rules as
    /// <see cref="Forward(float*, in Conv2dGeometry, ConvolutionWeights, float*, float*, float*, float*)"/>.
    /// </summary>
    public static void ForwardWinograd(float* x, in Conv2dGeometry g, ConvolutionWeights w, float* bias, float* y, float* residual = null,
        float* imageBias = null)
    {
        WinogradWeights.CheckFilters(w);
        CheckWinograd(g, w.OutChannels, w.InChannels);
        if (KernelSettings.UseReference)
        {
            using var reference = WinogradWeights.Reference(w);
            ForwardWinogradReference(x, g, reference, bias, y, residual, imageBias);
        }
        else ForwardWinograd(x, g, w, bias, y, residual, imageBias, KernelSettings.BestIsa);
    }

    internal static void ForwardWinograd(float* x, in Conv2dGeometry g, ConvolutionWeights w, float* bias, float* y, float* residual,
        float* imageBias, KernelIsa isa, bool? transformInTasks = null)
    {
        if (transformInTasks ?? TransformsInTasks(g))
        {
            ForwardWinograd(x, g, null, w.Matrix.PanelCount, bias, y, residual, imageBias, isa, w.Matrix.Storage, w.Matrix.Precision);
            return;
        }
        float* u = Scratch.Floats(ScratchSlot.WinogradFilters, WinogradWeights.ByteSizeOf(w.OutChannels, w.InChannels) / sizeof(float));
        WinogradWeights.Transform(w, u); // [36][Cout/32][Cin][32]
        ForwardWinograd(x, g, u, w.Matrix.PanelCount, bias, y, residual, imageBias, isa);
    }

    /// <summary>
    /// Whether a per-call Winograd convolution transforms its filters inside its tasks rather than all at once before
    /// them: for layers of fewer than 64x64 output pixels per image (the UNet's 32x32 level), whose few tiles make one
    /// task per panel block over all tiles the natural split, so each task transforms only its own panels, one K block
    /// at a time, into a few MB of its thread's scratch, and each filter is still transformed once per call. The
    /// all-at-once transform needs the whole layer's transformed filters in one buffer: 225 MiB for SD 1.5's largest
    /// 32x32-level layer. Above that size the tiles are many and are split between tasks, which would each repeat the
    /// transform, so those layers transform all at once (at most ~30 MB at SD 1.5's 64x64 level).
    /// </summary>
    internal static bool TransformsInTasks(in Conv2dGeometry g) => (long)g.OutHeight * g.OutWidth < TransformAllAtOnceMinOutputPixels;

    /// <summary>Output pixels per image from which a per-call Winograd layer transforms its filters all at once: 64x64.</summary>
    private const int TransformAllAtOnceMinOutputPixels = 64 * 64;

    /// <summary>
    /// y = conv2d(x, W) + bias (+ imageBias) (+ residual) by Winograd F(4x4, 3x3), W given as filters transformed in
    /// advance; otherwise as <see cref="ForwardWinograd(float*, in Conv2dGeometry, ConvolutionWeights, float*, float*, float*, float*)"/>.
    /// </summary>
    public static void ForwardWinograd(float* x, in Conv2dGeometry g, WinogradWeights u, float* bias, float* y, float* residual = null,
        float* imageBias = null)
    {
        ArgumentNullException.ThrowIfNull(u);
        CheckWinograd(g, u.OutChannels, u.InChannels);
        if (KernelSettings.UseReference) ForwardWinogradReference(x, g, u, bias, y, residual, imageBias);
        else ForwardWinograd(x, g, u, bias, y, residual, imageBias, KernelSettings.BestIsa);
    }

    private static void CheckWinograd(in Conv2dGeometry g, int outChannels, int inChannels)
    {
        g.Validate();
        if (!SupportsWinograd(g))
            throw new ArgumentException($"Winograd F(4x4, 3x3) needs a 3x3 stride-1 convolution, got {g}.");
        if (inChannels != g.InChannels || outChannels != g.OutChannels)
            throw new ArgumentException($"Winograd filters [{outChannels}, {inChannels}] do not match geometry {g}.");
    }

    /// <summary>Whether <paramref name="g"/> is a convolution Winograd F(4x4, 3x3) computes: 3x3, stride 1 (padding free).</summary>
    public static bool SupportsWinograd(in Conv2dGeometry g)
        => g.KernelHeight == 3 && g.KernelWidth == 3 && g.StrideH == 1 && g.StrideW == 1;

    private struct WinogradProblem
    {
        public float* X, U, Bias, Y, Residual;
        /// <summary>Optional [batch, Cout]: a bias per image (ResnetBlock2D's time embedding), added after the bias.</summary>
        public float* ImageBias;
        public Conv2dGeometry G;
        public int TilesH, TilesW, Tiles, Groups, TileBlocks, PanelCount, PanelBlocks, KBlocks;
        public long UStride;
        /// <summary>With <see cref="U"/> null: the packed 3x3 filters each task transforms for its own panels.</summary>
        public void* Filters;
        public WeightPrecision FilterPrecision;
    }

    internal static void ForwardWinograd(float* x, in Conv2dGeometry g, WinogradWeights u, float* bias, float* y, float* residual, KernelIsa isa)
        => ForwardWinograd(x, g, u, bias, y, residual, null, isa);

    internal static void ForwardWinograd(float* x, in Conv2dGeometry g, WinogradWeights u, float* bias, float* y, float* residual, float* imageBias, KernelIsa isa)
        => ForwardWinograd(x, g, u.Data, u.PanelCount, bias, y, residual, imageBias, isa);

    /// <summary>The kernel over transformed filters <paramref name="u"/>: [36][panelCount][Cin][32].</summary>
    private static void ForwardWinograd(float* x, in Conv2dGeometry g, float* u, int panelCount, float* bias, float* y, float* residual,
        float* imageBias, KernelIsa isa, void* filters = null, WeightPrecision filterPrecision = WeightPrecision.Float32)
    {
        var scheduler = ThreadScheduler.Current;
        int threads = scheduler.ThreadCount;
        var p = new WinogradProblem
        {
            X = x, U = u, Filters = filters, FilterPrecision = filterPrecision, Bias = bias, ImageBias = imageBias, Y = y, Residual = residual, G = g,
            TilesH = (g.OutHeight + 3) / 4, TilesW = (g.OutWidth + 3) / 4,
            PanelCount = panelCount, UStride = (long)panelCount * MicroKernel.Cols * g.InChannels,
            KBlocks = (g.InChannels + MicroKernel.KcMax - 1) / MicroKernel.KcMax,
        };
        p.Tiles = checked(g.Batch * p.TilesH * p.TilesW);
        p.Groups = (p.Tiles + MicroKernel.Rows - 1) / MicroKernel.Rows;
        int tileBlocks = (p.Groups + WinogradMaxGroupsPerTask - 1) / WinogradMaxGroupsPerTask, panelBlocks = 1;
        int want = threads == 1 ? 1 : 2 * threads;
        if (u == null)
        {
            // Filters transformed in the tasks: every task takes all tiles, so each panel's filters are transformed once.
            tileBlocks = 1;
            panelBlocks = Math.Min(p.PanelCount, want);
        }
        else
        {
            if (tileBlocks < want) panelBlocks = Math.Min(p.PanelCount, (want + tileBlocks - 1) / tileBlocks);
            if (tileBlocks * panelBlocks < want) tileBlocks = Math.Min(p.Groups, (want + panelBlocks - 1) / panelBlocks);
            if (tileBlocks >= threads && tileBlocks % threads != 0) tileBlocks = Math.Min(p.Groups, (tileBlocks + threads - 1) / threads * threads);
        }
        p.TileBlocks = tileBlocks;
        p.PanelBlocks = panelBlocks;
        void* context = Unsafe.AsPointer(ref p);
        switch (isa)
        {
            case KernelIsa.Avx512: scheduler.For(tileBlocks * panelBlocks, &WinogradTask<Avx512MicroKernel>, context); break;
            case KernelIsa.Avx2: scheduler.For(tileBlocks * panelBlocks, &WinogradTask<Avx2MicroKernel>, context); break;
            default: scheduler.For(tileBlocks * panelBlocks, &WinogradTask<PortableMicroKernel>, context); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WinogradTask<TK>(void* context, int index) where TK : struct, IMicroKernel
    {
        ref WinogradProblem p = ref Unsafe.AsRef<WinogradProblem>(context);
        var (g0, g1) = ThreadScheduler.Partition(p.Groups, p.TileBlocks, index / p.PanelBlocks);
        var (p0, p1) = ThreadScheduler.Partition(p.PanelCount, p.PanelBlocks, index % p.PanelBlocks);
        if (g0 == g1 || p0 == p1) return;
        const int width = MicroKernel.Cols;
        int t0 = g0 * MicroKernel.Rows;
        int tiles = Math.Min(p.Tiles, g1 * MicroKernel.Rows) - t0;
        int paddedTiles = (g1 - g0) * MicroKernel.Rows;
        int ldm = (p1 - p0) * width;
        long vPlane = (long)paddedTiles * MicroKernel.AStride, mPlane = (long)paddedTiles * ldm;
        float* v = Scratch.Floats(ScratchSlot.WinogradInput, Winograd43.Points * vPlane);       // [36][tiles][AStride]
        float* m = Scratch.Floats(ScratchSlot.WinogradProducts, Winograd43.Points * mPlane);    // [36][tiles][ldm]
        int cin = p.G.InChannels, cout = p.G.OutChannels;
        for (int kb = 0; kb < p.KBlocks; kb++)
        {
            var (k0, k1) = ThreadScheduler.Partition(cin, p.KBlocks, kb);
            int kc = k1 - k0;
            TransformInput(ref p, t0, tiles, k0, kc, v, vPlane);
            float* uBlock = null;
            long uPoint = 0;
            if (p.U == null)
            {
                // This task's panels, channels [k0, k1): [36][p1 - p0][kc][32] in the thread's scratch.
                uPoint = (long)(p1 - p0) * kc * width;
                uBlock = Scratch.Floats(ScratchSlot.WinogradFilters, Winograd43.Points * uPoint);
                for (int panel = p0; panel < p1; panel++)
                    WinogradWeights.TransformChannels(p.Filters, p.FilterPrecision, cin, panel, k0, k1, uBlock + (long)(panel - p0) * kc * width, uPoint);
            }
            for (int xi = 0; xi < Winograd43.Points; xi++)
            for (int r = tiles; r < paddedTiles; r++)
                new Span<float>(v + xi * vPlane + (long)r * MicroKernel.AStride, kc).Clear();
            for (int xi = 0; xi < Winograd43.Points; xi++)
            {
                float* a = v + xi * vPlane;
                float* mx = m + xi * mPlane;
                for (int panel = p0; panel < p1; panel++)
                {
                    float* b = p.U != null
                        ? p.U + xi * p.UStride + ((long)panel * cin + k0) * width
                        : uBlock + xi * uPoint + (long)(panel - p0) * kc * width;
                    int cols = Math.Min(width, cout - panel * width);
                    float* c = mx + (panel - p0) * width;
                    for (int r0 = 0; r0 < tiles; r0 += MicroKernel.Rows)
                    {
                        float* cr = c + (long)r0 * ldm;
                        TK.Compute(Math.Min(MicroKernel.Rows, tiles - r0), cols, a + (long)r0 * MicroKernel.AStride, b, width, kc,
                            kb == 0 ? null : cr, ldm, cr, ldm);
                    }
                }
            }
        }
        TransformOutput(ref p, t0, tiles, p0 * width, Math.Min(p1 * width, cout), m, mPlane, ldm);
    }

    /// <summary>V_ξ[r, c] = (Bᵀ d B)[ξ] for tiles t0 + r and input channels k0 + c (c &lt; kc); d is zero outside the image.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInput(ref WinogradProblem p, int t0, int tiles, int k0, int kc, float* v, long plane)
    {
        ref readonly Conv2dGeometry g = ref p.G;
        int cin = g.InChannels, n = Vector<float>.Count;
        Vector<float>* d = stackalloc Vector<float>[Winograd43.Points];
        for (int r = 0; r < tiles; r++)
        {
            int t = t0 + r;
            int tx = t % p.TilesW, ty = t / p.TilesW % p.TilesH, b = t / (p.TilesW * p.TilesH);
            int iy0 = ty * 4 - g.PadTop, ix0 = tx * 4 - g.PadLeft;
            int rows = 0, cols = 0;
            for (int i = 0; i < Winograd43.InputTile; i++)
            {
                if ((uint)(iy0 + i) < (uint)g.InHeight) rows |= 1 << i;
                if ((uint)(ix0 + i) < (uint)g.InWidth) cols |= 1 << i;
            }
            float* origin = p.X + (((long)b * g.InHeight + iy0) * g.InWidth + ix0) * cin + k0;
            float* dst = v + (long)r * MicroKernel.AStride;
            for (int c = 0; c < kc; c += n)
            {
                int len = Math.Min(n, kc - c);
                for (int i = 0; i < Winograd43.InputTile; i++)
                for (int j = 0; j < Winograd43.InputTile; j++)
                    d[i * 6 + j] = ((rows >> i) & (cols >> j) & 1) != 0
                        ? Load(origin + ((long)i * g.InWidth + j) * cin + c, len)
                        : Vector<float>.Zero;
                for (int j = 0; j < 6; j++) InputTransform(d + j, 6);   // Bᵀ d, column by column
                for (int i = 0; i < 6; i++) InputTransform(d + 6 * i, 1); // (Bᵀ d) B, row by row
                for (int xi = 0; xi < Winograd43.Points; xi++) Store(dst + xi * plane + c, d[xi], len);
            }
        }
    }

    /// <summary>y = Aᵀ M A + bias (+ image bias) (+ residual) for tiles t0 + r and output channels [c0, c1); M's column 0 is channel c0 rounded down to its panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutput(ref WinogradProblem p, int t0, int tiles, int c0, int c1, float* m, long plane, int ldm)
    {
        ref readonly Conv2dGeometry g = ref p.G;
        int ho = g.OutHeight, wo = g.OutWidth, cout = g.OutChannels, n = Vector<float>.Count;
        Vector<float>* s = stackalloc Vector<float>[Winograd43.Points];
        for (int r = 0; r < tiles; r++)
        {
            int t = t0 + r;
            int tx = t % p.TilesW, ty = t / p.TilesW % p.TilesH, b = t / (p.TilesW * p.TilesH);
            int rows = Math.Min(4, ho - ty * 4), cols = Math.Min(4, wo - tx * 4);
            float* src = m + (long)r * ldm - c0;
            long pixel0 = ((long)b * ho + ty * 4) * wo + tx * 4;
            for (int c = c0; c < c1; c += n)
            {
                int len = Math.Min(n, c1 - c);
                for (int xi = 0; xi < Winograd43.Points; xi++) s[xi] = Load(src + xi * plane + c, len);
                for (int j = 0; j < 6; j++) OutputTransform(s + j, 6);     // Aᵀ M: rows 0..3 of each column
                for (int i = 0; i < 4; i++) OutputTransform(s + 6 * i, 1);  // (Aᵀ M) A: columns 0..3 of rows 0..3
                var bias = p.Bias != null ? Load(p.Bias + c, len) : Vector<float>.Zero;
                var image = p.ImageBias != null ? Load(p.ImageBias + (long)b * cout + c, len) : Vector<float>.Zero;
                for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    long at = (pixel0 + (long)i * wo + j) * cout + c;
                    var value = s[i * 6 + j] + bias;
                    if (p.ImageBias != null) value += image;
                    if (p.Residual != null) value += Load(p.Residual + at, len);
                    Store(p.Y + at, value, len);
                }
            }
        }
    }

    /// <summary>Bᵀ applied in place to the six vectors x[0], x[s], ..., x[5s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputTransform(Vector<float>* x, int s)
    {
        Vector<float> d0 = x[0], d1 = x[s], d2 = x[2 * s], d3 = x[3 * s], d4 = x[4 * s], d5 = x[5 * s];
        var four = new Vector<float>(4f);
        var five = new Vector<float>(5f);
        var two = new Vector<float>(2f);
        x[0] = four * d0 - five * d2 + d4;
        x[s] = (d3 + d4) - four * (d1 + d2);
        x[2 * s] = (d4 - d3) + four * (d1 - d2);
        x[3 * s] = (d4 - d2) + two * (d3 - d1);
        x[4 * s] = (d4 - d2) - two * (d3 - d1);
        x[5 * s] = four * d1 - five * d3 + d5;
    }

    /// <summary>Aᵀ applied in place: the six vectors x[0], x[s], ..., x[5s] become four in x[0], ..., x[3s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTransform(Vector<float>* x, int s)
    {
        Vector<float> m0 = x[0], m1 = x[s], m2 = x[2 * s], m3 = x[3 * s], m4 = x[4 * s], m5 = x[5 * s];
        Vector<float> sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4;
        x[0] = m0 + sum12 + sum34;
        x[s] = diff12 + new Vector<float>(2f) * diff34;
        x[2 * s] = sum12 + new Vector<float>(4f) * sum34;
        x[3 * s] = diff12 + new Vector<float>(8f) * diff34 + m5;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Load(float* p, int len)
    {
        if (len == Vector<float>.Count) return Unsafe.ReadUnaligned<Vector<float>>(p);
        var v = Vector<float>.Zero;
        float* lanes = (float*)&v;
        for (int i = 0; i < len; i++) lanes[i] = p[i];
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* p, Vector<float> v, int len)
    {
        if (len == Vector<float>.Count)
        {
            Unsafe.WriteUnaligned(p, v);
            return;
        }
        float* lanes = (float*)&v;
        for (int i = 0; i < len; i++) p[i] = lanes[i];
    }
}
