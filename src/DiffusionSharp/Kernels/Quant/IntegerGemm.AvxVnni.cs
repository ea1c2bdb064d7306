using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Kernels.Quant;

internal static unsafe partial class IntegerGemm
{
    /// <summary>
    /// 8-bit weights on AVX-VNNI (<c>vpdpbusd</c>, 256-bit: the widest .NET 10 exposes): up to 4 rows x one panel of 16
    /// outputs per pass (8 int32 accumulators of the 16 VEX registers), each <c>vpdpbusd</c> adding 8 outputs x 4
    /// inputs of u8 weight x s8 activation. One group spans the row (per-token / per-channel scales): at the end the
    /// correction (128 x Σ codes) is subtracted and the sum scaled once.
    /// </summary>
    internal struct Int8AvxVnniMicroKernel : IMicroKernel
    {
        public static void Compute(ref Problem p, in Quad q, int rows, int panel0, int cols, float* dst)
        {
            for (int v = 0; v * IntegerMatrix.PanelWidth < cols; v++)
            {
                float* d = dst + v * IntegerMatrix.PanelWidth;
                if (rows == 4) Tile<C4>(ref p, q, panel0 + v, d);
                else if (rows == 3) Tile<C3>(ref p, q, panel0 + v, d);
                else if (rows == 2) Tile<C2>(ref p, q, panel0 + v, d);
                else Tile<C1>(ref p, q, panel0 + v, d);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile<TR>(ref Problem p, in Quad q, int panel, float* dst) where TR : struct, IConstant
        {
            int lda = p.PaddedK;
            sbyte* a0 = q.Codes, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            byte* w = p.Weights + panel * p.PanelWeightBytes;
            Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
            Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
            for (int k = 0; k < lda; k += 4, w += 64)
            {
                var w0 = Vector256.Load(w);
                var w1 = Vector256.Load(w + 32);
                Dot(a0 + k, w0, w1, ref c00, ref c01);
                if (TR.Value > 1) Dot(a1 + k, w0, w1, ref c10, ref c11);
                if (TR.Value > 2) Dot(a2 + k, w0, w1, ref c20, ref c21);
                if (TR.Value > 3) Dot(a3 + k, w0, w1, ref c30, ref c31);
            }
            float* sw = p.Scales + (long)panel * p.PanelScaleFloats;
            var sw0 = Vector256.Load(sw);
            var sw1 = Vector256.Load(sw + 8);
            Finish(c00, c01, q.Corrections[0], q.Scales[0], sw0, sw1, dst);
            if (TR.Value > 1) Finish(c10, c11, q.Corrections[1], q.Scales[1], sw0, sw1, dst + Cols);
            if (TR.Value > 2) Finish(c20, c21, q.Corrections[2], q.Scales[2], sw0, sw1, dst + 2 * Cols);
            if (TR.Value > 3) Finish(c30, c31, q.Corrections[3], q.Scales[3], sw0, sw1, dst + 3 * Cols);
            for (int r = 0; r < TR.Value; r++) LowRankUp(ref p, q.LowRank + (long)r * p.BranchWidth, panel, dst + r * Cols, IntegerMatrix.PanelWidth);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Dot(sbyte* a, Vector256<byte> w0, Vector256<byte> w1, ref Vector256<int> c0, ref Vector256<int> c1)
        {
            var x = Vector256.Create(*(int*)a).AsSByte();
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, w0, x);
            c1 = AvxVnni.MultiplyWideningAndAdd(c1, w1, x);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Finish(Vector256<int> c0, Vector256<int> c1, int corr, float sx, Vector256<float> sw0, Vector256<float> sw1, float* dst)
        {
            var c = Vector256.Create(corr);
            Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(c0 - c), sw0 * sx, Vector256<float>.Zero).Store(dst);
            Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(c1 - c), sw1 * sx, Vector256<float>.Zero).Store(dst + 8);
        }
    }

    /// <summary>
    /// 4-bit weights on AVX-VNNI: the same packed nibbles as <see cref="Int4Avx512BwMicroKernel"/>, unpacked per
    /// 256-bit half-panel, four <c>vpdpbusd</c> per row and octet straight into int32 (no int16 stage); up to 4 rows x
    /// one panel per pass, the fp32 accumulators kept in the destination block (the 16 VEX registers hold the 8 int32
    /// accumulators, 4 unpacked weights and 2 broadcasts). For machines with AVX-VNNI but no AVX-512, and measured
    /// against the AVX-512BW kernel on this one (docs/QUANTIZATION.md).
    /// </summary>
    internal struct Int4AvxVnniMicroKernel : IMicroKernel
    {
        public static void Compute(ref Problem p, in Quad q, int rows, int panel0, int cols, float* dst)
        {
            for (int v = 0; v * IntegerMatrix.PanelWidth < cols; v++)
            {
                float* d = dst + v * IntegerMatrix.PanelWidth;
                if (rows == 4) Tile<C4>(ref p, q, panel0 + v, d);
                else if (rows == 3) Tile<C3>(ref p, q, panel0 + v, d);
                else if (rows == 2) Tile<C2>(ref p, q, panel0 + v, d);
                else Tile<C1>(ref p, q, panel0 + v, d);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile<TR>(ref Problem p, in Quad q, int panel, float* dst) where TR : struct, IConstant
        {
            int lda = p.PaddedK, groups = p.Groups, gs = p.GroupSize;
            sbyte* a0 = q.Codes, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            float* sa = q.Scales;
            int* corr = q.Corrections;
            byte* w = p.Weights + panel * p.PanelWeightBytes;
            float* sw = p.Scales + (long)panel * p.PanelScaleFloats;
            var nibble = Vector256.Create((byte)0x0F);
            for (int r = 0; r < TR.Value; r++)
            {
                Vector256<float>.Zero.Store(dst + r * Cols);
                Vector256<float>.Zero.Store(dst + r * Cols + 8);
            }
            for (int g = 0; g < groups; g++)
            {
                Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
                Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
                int k0 = g * gs;
                byte* b = w + (long)k0 * 8;
                for (int k = k0; k < k0 + gs; k += 8, b += 64)
                {
                    var raw0 = Vector256.Load(b);
                    var raw1 = Vector256.Load(b + 32);
                    var lo0 = raw0 & nibble;
                    var hi0 = Vector256.ShiftRightLogical(raw0.AsUInt16(), 4).AsByte() & nibble;
                    var lo1 = raw1 & nibble;
                    var hi1 = Vector256.ShiftRightLogical(raw1.AsUInt16(), 4).AsByte() & nibble;
                    Dot(a0 + k, lo0, hi0, lo1, hi1, ref c00, ref c01);
                    if (TR.Value > 1) Dot(a1 + k, lo0, hi0, lo1, hi1, ref c10, ref c11);
                    if (TR.Value > 2) Dot(a2 + k, lo0, hi0, lo1, hi1, ref c20, ref c21);
                    if (TR.Value > 3) Dot(a3 + k, lo0, hi0, lo1, hi1, ref c30, ref c31);
                }
                var sw0 = Vector256.Load(sw + g * IntegerMatrix.PanelWidth);
                var sw1 = Vector256.Load(sw + g * IntegerMatrix.PanelWidth + 8);
                Finish(c00, c01, corr[g], sa[g], sw0, sw1, dst);
                if (TR.Value > 1) Finish(c10, c11, corr[groups + g], sa[groups + g], sw0, sw1, dst + Cols);
                if (TR.Value > 2) Finish(c20, c21, corr[2 * groups + g], sa[2 * groups + g], sw0, sw1, dst + 2 * Cols);
                if (TR.Value > 3) Finish(c30, c31, corr[3 * groups + g], sa[3 * groups + g], sw0, sw1, dst + 3 * Cols);
            }
            for (int r = 0; r < TR.Value; r++) LowRankUp(ref p, q.LowRank + (long)r * p.BranchWidth, panel, dst + r * Cols, IntegerMatrix.PanelWidth);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Dot(sbyte* a, Vector256<byte> lo0, Vector256<byte> hi0, Vector256<byte> lo1, Vector256<byte> hi1,
            ref Vector256<int> c0, ref Vector256<int> c1)
        {
            var xa = Vector256.Create(*(int*)a).AsSByte();
            var xb = Vector256.Create(*(int*)(a + 4)).AsSByte();
            c0 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(c0, lo0, xa), hi0, xb);
            c1 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(c1, lo1, xa), hi1, xb);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Finish(Vector256<int> c0, Vector256<int> c1, int corr, float sx, Vector256<float> sw0, Vector256<float> sw1, float* dst)
        {
            var c = Vector256.Create(corr);
            Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(c0 - c), sw0 * sx, Vector256.Load(dst)).Store(dst);
            Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(c1 - c), sw1 * sx, Vector256.Load(dst + 8)).Store(dst + 8);
        }
    }
}
