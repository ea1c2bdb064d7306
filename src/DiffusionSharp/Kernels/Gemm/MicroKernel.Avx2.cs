using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// AVX2+FMA micro-kernel: register tiles of 6 rows x 16 columns = 12 ymm accumulators plus two of B and one broadcast
/// (15 of the 16 registers); the 12 x 32 block is four such tiles. Per k: 2 loads of B, 6 broadcasts, 12 FMAs.
/// Measured with the path forced on Zen 5 (one core, .NET 10): 106 GFLOP/s on Linear 4096x1280x320, 93 % of a
/// 256-bit FMA peak. Not measured on an AVX2-only machine. The shape is the classic 6x16 of BLIS/OpenBLAS Haswell
/// kernels; others were not tried.
/// </summary>
internal unsafe struct Avx2MicroKernel : IMicroKernel
{
    public static void Compute(int rows, int cols, float* a, float* b, int ldb, int kc, float* init, int ldi, float* dst, int ldd)
    {
        for (int r0 = 0; r0 < rows; r0 += 6)
        {
            int tileRows = Math.Min(6, rows - r0);
            float* ar = a + r0 * MicroKernel.AStride;
            for (int j0 = 0; j0 < cols; j0 += 16)
            {
                float* i = init != null ? init + r0 * ldi + j0 : null;
                float* d = dst + r0 * ldd + j0;
                if (cols - j0 > 8)
                {
                    if (tileRows > 4) Tile<C6, C2>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                    else if (tileRows > 2) Tile<C4, C2>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                    else if (tileRows > 1) Tile<C2, C2>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                    else Tile<C1, C2>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                }
                else
                {
                    if (tileRows > 4) Tile<C6, C1>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                    else if (tileRows > 2) Tile<C4, C1>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                    else if (tileRows > 1) Tile<C2, C1>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                    else Tile<C1, C1>(ar, b + j0, ldb, kc, i, ldi, d, ldd);
                }
            }
        }
    }

    /// <summary>TR rows (1..6) x TV registers (1 or 2) of 8 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TR, TV>(float* a, float* b, int ldb, int kc, float* init, int ldi, float* dst, int ldd)
        where TR : struct, IConstant where TV : struct, IConstant
    {
        const int S = MicroKernel.AStride;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        if (init != null)
        {
            Load<TV>(init, ref c00, ref c01);
            if (TR.Value > 1) Load<TV>(init + ldi, ref c10, ref c11);
            if (TR.Value > 2) Load<TV>(init + 2 * ldi, ref c20, ref c21);
            if (TR.Value > 3) Load<TV>(init + 3 * ldi, ref c30, ref c31);
            if (TR.Value > 4) Load<TV>(init + 4 * ldi, ref c40, ref c41);
            if (TR.Value > 5) Load<TV>(init + 5 * ldi, ref c50, ref c51);
        }
        for (int k = 0; k < kc; k++, a++, b += ldb)
        {
            var b0 = Vector256.Load(b);
            var b1 = TV.Value > 1 ? Vector256.Load(b + 8) : default;
            Fma<TV>(a, b0, b1, ref c00, ref c01);
            if (TR.Value > 1) Fma<TV>(a + S, b0, b1, ref c10, ref c11);
            if (TR.Value > 2) Fma<TV>(a + 2 * S, b0, b1, ref c20, ref c21);
            if (TR.Value > 3) Fma<TV>(a + 3 * S, b0, b1, ref c30, ref c31);
            if (TR.Value > 4) Fma<TV>(a + 4 * S, b0, b1, ref c40, ref c41);
            if (TR.Value > 5) Fma<TV>(a + 5 * S, b0, b1, ref c50, ref c51);
        }
        Store<TV>(dst, c00, c01);
        if (TR.Value > 1) Store<TV>(dst + ldd, c10, c11);
        if (TR.Value > 2) Store<TV>(dst + 2 * ldd, c20, c21);
        if (TR.Value > 3) Store<TV>(dst + 3 * ldd, c30, c31);
        if (TR.Value > 4) Store<TV>(dst + 4 * ldd, c40, c41);
        if (TR.Value > 5) Store<TV>(dst + 5 * ldd, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma<TV>(float* a, Vector256<float> b0, Vector256<float> b1, ref Vector256<float> c0, ref Vector256<float> c1)
        where TV : struct, IConstant
    {
        var x = Vector256.Create(*a);
        c0 = Vector256.FusedMultiplyAdd(x, b0, c0);
        if (TV.Value > 1) c1 = Vector256.FusedMultiplyAdd(x, b1, c1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load<TV>(float* p, ref Vector256<float> c0, ref Vector256<float> c1) where TV : struct, IConstant
    {
        c0 = Vector256.Load(p);
        if (TV.Value > 1) c1 = Vector256.Load(p + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TV>(float* p, Vector256<float> c0, Vector256<float> c1) where TV : struct, IConstant
    {
        c0.Store(p);
        if (TV.Value > 1) c1.Store(p + 8);
    }
}
