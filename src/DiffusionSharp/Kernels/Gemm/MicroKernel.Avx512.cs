using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// AVX-512 micro-kernel: 12 rows x 32 columns = 24 zmm accumulators, two zmm of B and one broadcast of A per row and k
/// (26 of the 32 registers). Per k: 2 loads of B, 12 broadcasts of A, 24 FMAs (12 cycles at two FMA ports).
/// Measured (Zen 5, .NET 10, one core): 224 GFLOP/s on a 12x32x512 block repeated from L1/L2 = the FMA peak;
/// 207-210 GFLOP/s (91-92 % of peak) inside the full GEMM at SD 1.5 shapes (docs/KERNELS.md).
/// The JIT keeps all 24 accumulators in registers and folds each row's address to one base plus an immediate
/// (<see cref="MicroKernel.AStride"/> is a constant). Not tried: 14x32 or 6x64 register shapes — this one already
/// reaches the peak in isolation; 64-wide panels would also waste more on tails.
/// </summary>
internal unsafe struct Avx512MicroKernel : IMicroKernel
{
    public static void Compute(int rows, int cols, float* a, float* b, int ldb, int kc, float* init, int ldi, float* dst, int ldd)
    {
        if (cols > 16)
        {
            if (rows > 8) Tile<C12, C2>(a, b, ldb, kc, init, ldi, dst, ldd);
            else if (rows > 4) Tile<C8, C2>(a, b, ldb, kc, init, ldi, dst, ldd);
            else if (rows > 2) Tile<C4, C2>(a, b, ldb, kc, init, ldi, dst, ldd);
            else if (rows > 1) Tile<C2, C2>(a, b, ldb, kc, init, ldi, dst, ldd);
            else Tile<C1, C2>(a, b, ldb, kc, init, ldi, dst, ldd);
        }
        else
        {
            if (rows > 8) Tile<C12, C1>(a, b, ldb, kc, init, ldi, dst, ldd);
            else if (rows > 4) Tile<C8, C1>(a, b, ldb, kc, init, ldi, dst, ldd);
            else if (rows > 2) Tile<C4, C1>(a, b, ldb, kc, init, ldi, dst, ldd);
            else if (rows > 1) Tile<C2, C1>(a, b, ldb, kc, init, ldi, dst, ldd);
            else Tile<C1, C1>(a, b, ldb, kc, init, ldi, dst, ldd);
        }
    }

    /// <summary>TR rows (1..12) x TV registers (1 or 2) of 16 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TR, TV>(float* a, float* b, int ldb, int kc, float* init, int ldi, float* dst, int ldd)
        where TR : struct, IConstant where TV : struct, IConstant
    {
        const int S = MicroKernel.AStride;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        if (init != null)
        {
            Load<TV>(init, ref c00, ref c01);
            if (TR.Value > 1) Load<TV>(init + ldi, ref c10, ref c11);
            if (TR.Value > 2) Load<TV>(init + 2 * ldi, ref c20, ref c21);
            if (TR.Value > 3) Load<TV>(init + 3 * ldi, ref c30, ref c31);
            if (TR.Value > 4) Load<TV>(init + 4 * ldi, ref c40, ref c41);
            if (TR.Value > 5) Load<TV>(init + 5 * ldi, ref c50, ref c51);
            if (TR.Value > 6) Load<TV>(init + 6 * ldi, ref c60, ref c61);
            if (TR.Value > 7) Load<TV>(init + 7 * ldi, ref c70, ref c71);
            if (TR.Value > 8) Load<TV>(init + 8 * ldi, ref c80, ref c81);
            if (TR.Value > 9) Load<TV>(init + 9 * ldi, ref c90, ref c91);
            if (TR.Value > 10) Load<TV>(init + 10 * ldi, ref ca0, ref ca1);
            if (TR.Value > 11) Load<TV>(init + 11 * ldi, ref cb0, ref cb1);
        }
        for (int k = 0; k < kc; k++, a++, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = TV.Value > 1 ? Vector512.Load(b + 16) : default;
            Fma<TV>(a, b0, b1, ref c00, ref c01);
            if (TR.Value > 1) Fma<TV>(a + S, b0, b1, ref c10, ref c11);
            if (TR.Value > 2) Fma<TV>(a + 2 * S, b0, b1, ref c20, ref c21);
            if (TR.Value > 3) Fma<TV>(a + 3 * S, b0, b1, ref c30, ref c31);
            if (TR.Value > 4) Fma<TV>(a + 4 * S, b0, b1, ref c40, ref c41);
            if (TR.Value > 5) Fma<TV>(a + 5 * S, b0, b1, ref c50, ref c51);
            if (TR.Value > 6) Fma<TV>(a + 6 * S, b0, b1, ref c60, ref c61);
            if (TR.Value > 7) Fma<TV>(a + 7 * S, b0, b1, ref c70, ref c71);
            if (TR.Value > 8) Fma<TV>(a + 8 * S, b0, b1, ref c80, ref c81);
            if (TR.Value > 9) Fma<TV>(a + 9 * S, b0, b1, ref c90, ref c91);
            if (TR.Value > 10) Fma<TV>(a + 10 * S, b0, b1, ref ca0, ref ca1);
            if (TR.Value > 11) Fma<TV>(a + 11 * S, b0, b1, ref cb0, ref cb1);
        }
        Store<TV>(dst, c00, c01);
        if (TR.Value > 1) Store<TV>(dst + ldd, c10, c11);
        if (TR.Value > 2) Store<TV>(dst + 2 * ldd, c20, c21);
        if (TR.Value > 3) Store<TV>(dst + 3 * ldd, c30, c31);
        if (TR.Value > 4) Store<TV>(dst + 4 * ldd, c40, c41);
        if (TR.Value > 5) Store<TV>(dst + 5 * ldd, c50, c51);
        if (TR.Value > 6) Store<TV>(dst + 6 * ldd, c60, c61);
        if (TR.Value > 7) Store<TV>(dst + 7 * ldd, c70, c71);
        if (TR.Value > 8) Store<TV>(dst + 8 * ldd, c80, c81);
        if (TR.Value > 9) Store<TV>(dst + 9 * ldd, c90, c91);
        if (TR.Value > 10) Store<TV>(dst + 10 * ldd, ca0, ca1);
        if (TR.Value > 11) Store<TV>(dst + 11 * ldd, cb0, cb1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma<TV>(float* a, Vector512<float> b0, Vector512<float> b1, ref Vector512<float> c0, ref Vector512<float> c1)
        where TV : struct, IConstant
    {
        var x = Vector512.Create(*a);
        c0 = Vector512.FusedMultiplyAdd(x, b0, c0);
        if (TV.Value > 1) c1 = Vector512.FusedMultiplyAdd(x, b1, c1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load<TV>(float* p, ref Vector512<float> c0, ref Vector512<float> c1) where TV : struct, IConstant
    {
        c0 = Vector512.Load(p);
        if (TV.Value > 1) c1 = Vector512.Load(p + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TV>(float* p, Vector512<float> c0, Vector512<float> c1) where TV : struct, IConstant
    {
        c0.Store(p);
        if (TV.Value > 1) c1.Store(p + 16);
    }
}
