using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Quant;

/// <summary>Instruction-set paths of <see cref="IntegerGemm"/>.</summary>
public enum IntegerGemmPath
{
    /// <summary>Scalar integer code: any machine, both widths.</summary>
    Portable,
    /// <summary>AVX-512BW <c>vpmaddubsw</c> (u8 x s8 pairs into int16, one 64-input group at a time, no overflow for
    /// 4-bit codes) and <c>vpmaddwd</c> to widen: 4-bit weights.</summary>
    Avx512Bw,
    /// <summary>AVX-VNNI <c>vpdpbusd</c> on 256-bit registers (u8 x s8 quads into int32): 8-bit weights, and 4-bit.</summary>
    AvxVnni,
}

/// <summary>
/// The integer GEMM of <see cref="IntegerMatrix"/> with the dequantization and the low-rank up projection fused into
/// its epilogue (Nunchaku's fusion 2):
/// <code>
/// c[m, n] = Σ_g sx[m, g] · sw[n, g] · (Σ_{k in g} qx[m, k] · u[n, k] − corr[m, g])     u = w + offset (stored unsigned)
///         + Σ_j lowRank[m, j] · up[n, j] + bias[n] (+ residual[m, n])
/// </code>
/// One scheduler call per layer: the work is split into row blocks (tiles) of up to 64 rows, at least two per thread
/// when M allows; each tile first quantizes its own rows into per-thread scratch with <see cref="ActivationQuantizer"/>
/// (corr = offset · Σ_{k in g} qx[m, k], so the bracket is the exact signed dot product; the low-rank inputs come out
/// of the same pass), then for each 32-output column block (two weight panels) the micro-kernel runs down the tile's
/// row quads, computing a 4 x 32 block over all of K and the rank-r up projection on its accumulators (8 independent
/// FMA chains), and the epilogue adds bias and residual and writes C once. The quantized rows never leave the core's
/// caches; no row is quantized twice. Integer sums are exact and the float operations per output are the same on every path and for every
/// tiling (fp32: per group one FMA of the converted sum; then the rank FMAs in j order, bias, residual), so the
/// results are bitwise identical across threads, tiles and instruction sets.
/// </summary>
internal static unsafe partial class IntegerGemm
{
    /// <summary>Rows per micro-kernel call.</summary>
    public const int Rows = 4;

    /// <summary>Outputs per micro-kernel call: two panels.</summary>
    public const int Cols = 2 * IntegerMatrix.PanelWidth;

    private const int MaxQuadsPerTile = 16;

    public static IntegerGemmPath BestPath(int bits) => bits == 4
        ? IsSupported(IntegerGemmPath.Avx512Bw, 4) ? IntegerGemmPath.Avx512Bw : IsSupported(IntegerGemmPath.AvxVnni, 4) ? IntegerGemmPath.AvxVnni : IntegerGemmPath.Portable
        : IsSupported(IntegerGemmPath.AvxVnni, 8) ? IntegerGemmPath.AvxVnni : IntegerGemmPath.Portable;

    public static bool IsSupported(IntegerGemmPath path, int bits) => path switch
    {
        IntegerGemmPath.Portable => true,
        IntegerGemmPath.Avx512Bw => bits == 4 && Avx512BW.IsSupported && Vector512.IsHardwareAccelerated,
        IntegerGemmPath.AvxVnni => AvxVnni.IsSupported,
        _ => false,
    };

    /// <summary>One layer call: the rows, the packed weights as raw pointers, the epilogue operands and the tiling.</summary>
    internal struct Problem
    {
        public ActivationRows Rows;
        public ActivationQuantizer.Args Quantizer;
        public byte* Weights;
        public float* Scales;
        public float* Up;
        public long PanelWeightBytes;
        public int PanelScaleFloats, PanelUpFloats;
        public int PaddedK, Groups, GroupSize, BranchWidth;
        public int M, N;
        public float* Bias;
        public float* C;
        public int Ldc;
        public float* Residual;
        public int Ldr;
        public int Quads, ColBlocks, Tiles;
    }

    /// <summary>The quantized operands of up to 4 consecutive rows (each array at its first row).</summary>
    internal readonly struct Quad(sbyte* codes, float* scales, int* corrections, float* lowRank)
    {
        public readonly sbyte* Codes = codes;
        public readonly float* Scales = scales;
        public readonly int* Corrections = corrections;
        public readonly float* LowRank = lowRank;
    }

    /// <summary>
    /// The micro-kernel: dst[r, n] = Σ_g sx · sw · (dot − corr), then + lowRank[r, j] · up[n, j] for j in order (one FMA
    /// each), for the first rows (≤ 4) of the quad and outputs [16 · panel0, 16 · panel0 +
    /// cols) (cols ≤ 32); dst is a 4 x 32 block (row stride 32), entries past rows/cols unspecified.
    /// </summary>
    internal interface IMicroKernel
    {
        static abstract void Compute(ref Problem p, in Quad q, int rows, int panel0, int cols, float* dst);
    }

    public static void Run(IntegerMatrix w, in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual, int ldr, IntegerGemmPath path)
    {
        var p = new Problem
        {
            Rows = rows, Quantizer = new ActivationQuantizer.Args(w, vectorized: path != IntegerGemmPath.Portable),
            Weights = w.PanelWeights(0), Scales = w.PanelScales(0), Up = w.BranchWidth > 0 ? w.PanelUp(0) : null,
            PanelWeightBytes = w.PanelWeights(1) - w.PanelWeights(0),
            PanelScaleFloats = w.Groups * IntegerMatrix.PanelWidth, PanelUpFloats = w.BranchWidth * IntegerMatrix.PanelWidth,
            PaddedK = w.PaddedK, Groups = w.Groups, GroupSize = w.GroupSize, BranchWidth = w.BranchWidth,
            M = m, N = w.N, Bias = bias, C = c, Ldc = ldc, Residual = residual, Ldr = ldr,
        };
        var scheduler = ThreadScheduler.Current;
        Plan(ref p, scheduler.ThreadCount);
        int tiles = p.Tiles;
        switch (path)
        {
            case IntegerGemmPath.Avx512Bw: scheduler.For(tiles, &Tile<Int4Avx512BwMicroKernel>, &p); break;
            case IntegerGemmPath.AvxVnni when w.Bits == 4: scheduler.For(tiles, &Tile<Int4AvxVnniMicroKernel>, &p); break;
            case IntegerGemmPath.AvxVnni: scheduler.For(tiles, &Tile<Int8AvxVnniMicroKernel>, &p); break;
            default:
                if (w.Bits == 4) scheduler.For(tiles, &Tile<Int4PortableMicroKernel>, &p);
                else scheduler.For(tiles, &Tile<Int8PortableMicroKernel>, &p);
                break;
        }
    }

    /// <summary>Row tiles of at most 16 quads; at least two per thread when M allows, a count that is a multiple of the threads.</summary>
    private static void Plan(ref Problem p, int threads)
    {
        int quads = (p.M + Rows - 1) / Rows;
        int tiles = (quads + MaxQuadsPerTile - 1) / MaxQuadsPerTile;
        if (threads > 1)
        {
            tiles = Math.Max(tiles, 2 * threads);
            tiles = Math.Min(quads, (tiles + threads - 1) / threads * threads);
        }
        p.Quads = quads;
        p.ColBlocks = (p.N + Cols - 1) / Cols;
        p.Tiles = tiles;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TK>(void* context, int index) where TK : struct, IMicroKernel
    {
        ref Problem p = ref Unsafe.AsRef<Problem>(context);
        var (q0, q1) = ThreadScheduler.Partition(p.Quads, p.Tiles, index);
        int row0 = q0 * Rows, count = Math.Min(p.M, q1 * Rows) - row0;
        if (count <= 0) return;
        sbyte* codes = (sbyte*)Scratch.Bytes(ScratchSlot.QuantActivations, (long)count * p.PaddedK);
        float* scales = Scratch.Floats(ScratchSlot.QuantScales, (long)count * p.Groups);
        int* corrections = (int*)Scratch.Bytes(ScratchSlot.QuantCorrections, (long)count * p.Groups * sizeof(int));
        float* lowRank = p.BranchWidth > 0 ? Scratch.Floats(ScratchSlot.QuantLowRank, (long)count * p.BranchWidth) : null;
        ActivationQuantizer.QuantizeRows(ref p.Quantizer, p.Rows, row0, count, codes, scales, corrections, lowRank);
        float* tile = stackalloc float[Rows * Cols];
        for (int block = 0; block < p.ColBlocks; block++)
        {
            int col0 = block * Cols, cols = Math.Min(Cols, p.N - col0);
            for (int r = 0; r < count; r += Rows)
            {
                var quad = new Quad(codes + (long)r * p.PaddedK, scales + (long)r * p.Groups, corrections + (long)r * p.Groups,
                    lowRank != null ? lowRank + (long)r * p.BranchWidth : null);
                int rows = Math.Min(Rows, count - r);
                TK.Compute(ref p, quad, rows, 2 * block, cols, tile);
                Epilogue(ref p, tile, row0 + r, rows, col0, cols);
            }
        }
    }

    /// <summary>c = tile + bias + residual for a rows x cols block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(ref Problem p, float* tile, int row0, int rows, int col0, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int row = row0 + r;
            float* t = tile + r * Cols;
            float* dst = p.C + (long)row * p.Ldc + col0;
            float* res = p.Residual != null ? p.Residual + (long)row * p.Ldr + col0 : null;
            float* bias = p.Bias != null ? p.Bias + col0 : null;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= cols - 16; i += 16)
                {
                    var v = Vector512.Load(t + i);
                    if (bias != null) v += Vector512.Load(bias + i);
                    if (res != null) v += Vector512.Load(res + i);
                    v.Store(dst + i);
                }
            }
            for (; i < cols; i++)
            {
                float v = t[i];
                if (bias != null) v += bias[i];
                if (res != null) v += res[i];
                dst[i] = v;
            }
        }
    }

    /// <summary>The low-rank up projection of one row (<paramref name="lora"/>: its BranchWidth inputs) on a 16-output
    /// accumulator kept in memory (the fallback paths).</summary>
    private static void LowRankUp(ref Problem p, float* lora, int panel, float* acc, int lanes)
    {
        if (p.BranchWidth == 0) return;
        float* up = p.Up + (long)panel * p.PanelUpFloats;
        for (int i = 0; i < lanes; i++)
        {
            float v = acc[i];
            for (int j = 0; j < p.BranchWidth; j++) v = MathF.FusedMultiplyAdd(lora[j], up[j * IntegerMatrix.PanelWidth + i], v);
            acc[i] = v;
        }
    }
}
