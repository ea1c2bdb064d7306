using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Kernels.Quant;

internal static unsafe partial class IntegerGemm
{
    /// <summary>
    /// 4-bit weights on AVX-512BW: up to 4 rows x 32 outputs. Per octet of inputs one 64-byte load per panel gives
    /// 16 outputs x 8 inputs of nibbles; <c>and 0x0F</c> and <c>(x >> 4) and 0x0F</c> unpack them in registers to
    /// the u8 operands of two <c>vpmaddubsw</c> against 4 broadcast activation codes each (s8), whose int16 pair sums
    /// accumulate (<c>vpaddw</c>) over the whole group: at most 64 pairs of 15 x 7 per lane and group of 256, so no
    /// overflow. At the group's end <c>vpmaddwd</c> with ones widens to int32, the correction is subtracted, and one FMA
    /// adds sum x (sw x sx) to the fp32 accumulator; after the last group the rank-r up projection runs on the same
/// accumulators (one broadcast and two FMAs per row and j). Registers: 8 int16 + 8 fp32 accumulators, 4 unpacked weights, 2
    /// broadcasts. (.NET 10 has no 512-bit <c>vpdpbusd</c> intrinsic; this pair does the same 64 multiply-adds per
    /// instruction pair.) Measured speed: docs/QUANTIZATION.md.
    /// </summary>
    internal struct Int4Avx512BwMicroKernel : IMicroKernel
    {
        public static void Compute(ref Problem p, in Quad q, int rows, int panel0, int cols, float* dst)
        {
            if (cols > IntegerMatrix.PanelWidth)
            {
                if (rows == 4) Tile<C4, C2>(ref p, q, panel0, dst);
                else if (rows == 3) Tile<C3, C2>(ref p, q, panel0, dst);
                else if (rows == 2) Tile<C2, C2>(ref p, q, panel0, dst);
                else Tile<C1, C2>(ref p, q, panel0, dst);
            }
            else
            {
                if (rows == 4) Tile<C4, C1>(ref p, q, panel0, dst);
                else if (rows == 3) Tile<C3, C1>(ref p, q, panel0, dst);
                else if (rows == 2) Tile<C2, C1>(ref p, q, panel0, dst);
                else Tile<C1, C1>(ref p, q, panel0, dst);
            }
        }

        /// <summary>TR rows (1..4) x TV panels (1 or 2).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile<TR, TV>(ref Problem p, in Quad q, int panel0, float* dst) where TR : struct, IConstant where TV : struct, IConstant
        {
            int lda = p.PaddedK, groups = p.Groups, gs = p.GroupSize;
            sbyte* a0 = q.Codes, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            float* sa = q.Scales;
            int* corr = q.Corrections;
            byte* w0 = p.Weights + panel0 * p.PanelWeightBytes, w1 = w0 + p.PanelWeightBytes;
            float* s0 = p.Scales + (long)panel0 * p.PanelScaleFloats, s1 = s0 + p.PanelScaleFloats;
            var nibble = Vector512.Create((byte)0x0F);
            var ones = Vector512.Create((short)1);
            Vector512<float> f00 = default, f01 = default, f10 = default, f11 = default;
            Vector512<float> f20 = default, f21 = default, f30 = default, f31 = default;
            for (int g = 0; g < groups; g++)
            {
                Vector512<short> i00 = default, i01 = default, i10 = default, i11 = default;
                Vector512<short> i20 = default, i21 = default, i30 = default, i31 = default;
                int k0 = g * gs;
                byte* b0 = w0 + (long)k0 * 8, b1 = w1 + (long)k0 * 8;
                for (int k = k0; k < k0 + gs; k += 8, b0 += 64, b1 += 64)
                {
                    var raw0 = Vector512.Load(b0);
                    var lo0 = raw0 & nibble;
                    var hi0 = Vector512.ShiftRightLogical(raw0.AsUInt16(), 4).AsByte() & nibble;
                    Vector512<byte> lo1 = default, hi1 = default;
                    if (TV.Value > 1)
                    {
                        var raw1 = Vector512.Load(b1);
                        lo1 = raw1 & nibble;
                        hi1 = Vector512.ShiftRightLogical(raw1.AsUInt16(), 4).AsByte() & nibble;
                    }
                    Dot<TV>(a0 + k, lo0, hi0, lo1, hi1, ref i00, ref i01);
                    if (TR.Value > 1) Dot<TV>(a1 + k, lo0, hi0, lo1, hi1, ref i10, ref i11);
                    if (TR.Value > 2) Dot<TV>(a2 + k, lo0, hi0, lo1, hi1, ref i20, ref i21);
                    if (TR.Value > 3) Dot<TV>(a3 + k, lo0, hi0, lo1, hi1, ref i30, ref i31);
                }
                var sw0 = Vector512.Load(s0 + g * IntegerMatrix.PanelWidth);
                var sw1 = TV.Value > 1 ? Vector512.Load(s1 + g * IntegerMatrix.PanelWidth) : default;
                Finish<TV>(i00, i01, corr[g], sa[g], sw0, sw1, ones, ref f00, ref f01);
                if (TR.Value > 1) Finish<TV>(i10, i11, corr[groups + g], sa[groups + g], sw0, sw1, ones, ref f10, ref f11);
                if (TR.Value > 2) Finish<TV>(i20, i21, corr[2 * groups + g], sa[2 * groups + g], sw0, sw1, ones, ref f20, ref f21);
                if (TR.Value > 3) Finish<TV>(i30, i31, corr[3 * groups + g], sa[3 * groups + g], sw0, sw1, ones, ref f30, ref f31);
            }
            if (p.BranchWidth > 0)
            {
                float* lora = q.LowRank;
                float* u0 = p.Up + (long)panel0 * p.PanelUpFloats, u1 = u0 + p.PanelUpFloats;
                for (int j = 0; j < p.BranchWidth; j++, u0 += IntegerMatrix.PanelWidth, u1 += IntegerMatrix.PanelWidth)
                {
                    var up0 = Vector512.Load(u0);
                    var up1 = TV.Value > 1 ? Vector512.Load(u1) : default;
                    UpStep<TV>(lora[j], up0, up1, ref f00, ref f01);
                    if (TR.Value > 1) UpStep<TV>(lora[p.BranchWidth + j], up0, up1, ref f10, ref f11);
                    if (TR.Value > 2) UpStep<TV>(lora[2 * p.BranchWidth + j], up0, up1, ref f20, ref f21);
                    if (TR.Value > 3) UpStep<TV>(lora[3 * p.BranchWidth + j], up0, up1, ref f30, ref f31);
                }
            }
            Store<TV>(dst, f00, f01);
            if (TR.Value > 1) Store<TV>(dst + Cols, f10, f11);
            if (TR.Value > 2) Store<TV>(dst + 2 * Cols, f20, f21);
            if (TR.Value > 3) Store<TV>(dst + 3 * Cols, f30, f31);
        }

        /// <summary>Adds one octet of one row: inputs k..k+3 against the low nibbles, k+4..k+7 against the high ones.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Dot<TV>(sbyte* a, Vector512<byte> lo0, Vector512<byte> hi0, Vector512<byte> lo1, Vector512<byte> hi1,
            ref Vector512<short> i0, ref Vector512<short> i1) where TV : struct, IConstant
        {
            var xa = Vector512.Create(*(int*)a).AsSByte();
            var xb = Vector512.Create(*(int*)(a + 4)).AsSByte();
            i0 += Avx512BW.MultiplyAddAdjacent(lo0, xa) + Avx512BW.MultiplyAddAdjacent(hi0, xb);
            if (TV.Value > 1) i1 += Avx512BW.MultiplyAddAdjacent(lo1, xa) + Avx512BW.MultiplyAddAdjacent(hi1, xb);
        }

        /// <summary>f += (Σ pairs − corr) · (sw · sx) at the end of a group.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Finish<TV>(Vector512<short> i0, Vector512<short> i1, int corr, float sx, Vector512<float> sw0, Vector512<float> sw1,
            Vector512<short> ones, ref Vector512<float> f0, ref Vector512<float> f1) where TV : struct, IConstant
        {
            var c = Vector512.Create(corr);
            f0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(i0, ones) - c), sw0 * sx, f0);
            if (TV.Value > 1) f1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(i1, ones) - c), sw1 * sx, f1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void UpStep<TV>(float lora, Vector512<float> up0, Vector512<float> up1, ref Vector512<float> f0, ref Vector512<float> f1)
            where TV : struct, IConstant
        {
            var l = Vector512.Create(lora);
            f0 = Vector512.FusedMultiplyAdd(l, up0, f0);
            if (TV.Value > 1) f1 = Vector512.FusedMultiplyAdd(l, up1, f1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store<TV>(float* p, Vector512<float> v0, Vector512<float> v1) where TV : struct, IConstant
        {
            v0.Store(p);
            if (TV.Value > 1) v1.Store(p + IntegerMatrix.PanelWidth);
        }
    }
}
