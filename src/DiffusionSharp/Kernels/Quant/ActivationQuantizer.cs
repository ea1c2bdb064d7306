using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// Dynamic activation quantization fused with the low-rank down projection (Nunchaku's fusion 1): one read of each
/// row x yields its integer codes, per-group scales and corrections, and x̂ · down. Per row, in fp32:
/// <code>
/// x̂[k] = x[k] · (1/λ[k])
/// per group g:  a = max |x̂[k]|;  s = a / qmax;  q[k] = clamp(round_to_even(x̂[k] · (qmax / a)), -qmax, qmax)
///               a &lt; 1e-30 (zero, or so small that qmax / a overflows): s = 0, q = 0;  a not finite (NaN or infinity in the group): s = NaN, q = 0
///               codes past K are 0;  corr = offset · Σ q[k]
/// lowRank[j] = Σ_k x̂[k] · down[k, j]     (one FMA chain per j in k order)
/// </code>
/// qmax = 7 (int4) or 127 (int8); a non-finite input makes its row's outputs NaN. The codes, scales and corrections of
/// the vectorized path equal the reference's bit for bit (same fp32 operations, round-to-even conversion); the
/// low-rank sums are the same FMA chains as the scalar path (the reference sums in double).
/// Rows are split over the scheduler in chunks of <see cref="RowsPerChunk"/>.
/// Cost: O(K (1 + r)) per row, the r FMAs of the low-rank branch dominating (measured in docs/QUANTIZATION.md).
/// </summary>
internal static unsafe class ActivationQuantizer
{
    private const int RowsPerChunk = 16;

    /// <summary>Rows whose low-rank sums run together: 4 rows x 2 vectors = 8 independent FMA chains for rank 32.</summary>
    private const int LowRankRows = 4;

    /// <summary>Groups whose largest magnitude is below this quantize to zero (qmax / a would overflow near 2e-38).</summary>
    private const float MinMagnitude = 1e-30f;

    /// <summary>What quantizing a row needs from its <see cref="IntegerMatrix"/>, as plain values for the scheduler.</summary>
    private struct Args
    {
        public ActivationRows Rows;
        public int M, K, PaddedK, Groups, GroupSize, PaddedRank, ActivationMax, WeightOffset;
        public float* InvSmooth;
        public float* Down;
        public QuantizedActivations Out;
        public bool Vectorized;
    }

    public static void Quantize(in ActivationRows rows, int m, IntegerMatrix w, in QuantizedActivations output, bool vectorized)
    {
        var args = new Args
        {
            Rows = rows, M = m, K = w.K, PaddedK = w.PaddedK, Groups = w.Groups, GroupSize = w.GroupSize,
            PaddedRank = w.PaddedRank, ActivationMax = w.ActivationMax, WeightOffset = w.WeightOffset,
            InvSmooth = w.InvSmooth, Down = w.Down, Out = output,
            Vectorized = vectorized && Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        };
        ThreadScheduler.Current.For((m + RowsPerChunk - 1) / RowsPerChunk, &Chunk, &args);
    }

    private static void Chunk(void* context, int chunk)
    {
        ref Args a = ref Unsafe.AsRef<Args>(context);
        float* gather = a.Rows.IsContiguous ? null : Scratch.Floats(ScratchSlot.QuantRow, a.K);
        float* smoothed = Scratch.Floats(ScratchSlot.QuantSmoothed, (long)LowRankRows * a.PaddedK);
        int end = Math.Min(a.M, (chunk + 1) * RowsPerChunk);
        for (int r0 = chunk * RowsPerChunk; r0 < end; r0 += LowRankRows)
        {
            int rows = Math.Min(LowRankRows, end - r0);
            for (int i = 0; i < rows; i++)
            {
                int r = r0 + i;
                float* xh = smoothed + (long)i * a.PaddedK;
                Smooth(a.Rows.Row(r, gather), ref a, xh);
                sbyte* q = a.Out.Codes + (long)r * a.PaddedK;
                float* s = a.Out.Scales + (long)r * a.Groups;
                int* corr = a.Out.Corrections + (long)r * a.Groups;
                if (a.Vectorized) CodesAvx512(ref a, xh, q, s, corr);
                else CodesScalar(ref a, xh, q, s, corr);
            }
            if (a.PaddedRank == 0) continue;
            float* lora = a.Out.LowRank + (long)r0 * a.PaddedRank;
            if (a.Vectorized) LowRankAvx512(ref a, smoothed, rows, lora);
            else LowRankScalar(ref a, smoothed, rows, lora);
        }
    }

    /// <summary>x̂ = x · (1/λ) into <paramref name="smoothed"/> [PaddedK], zeros past K.</summary>
    private static void Smooth(float* x, ref Args a, float* smoothed)
    {
        int k = a.K, i = 0;
        float* inv = a.InvSmooth;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= k - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                (inv != null ? v * Vector512.Load(inv + i) : v).Store(smoothed + i);
            }
        }
        for (; i < k; i++) smoothed[i] = inv != null ? x[i] * inv[i] : x[i];
        new Span<float>(smoothed + k, a.PaddedK - k).Clear();
    }

    private static void CodesScalar(ref Args a, float* xh, sbyte* q, float* s, int* corr)
    {
        int gs = a.GroupSize;
        for (int g = 0; g < a.Groups; g++)
        {
            float* v = xh + g * gs;
            float amax = 0f;
            for (int i = 0; i < gs; i++) amax = MathF.Max(amax, MathF.Abs(v[i]));
            int sum = 0;
            s[g] = GroupScale(amax, a.ActivationMax, out float inverse);
            for (int i = 0; i < gs; i++)
            {
                int c = Code(v[i], inverse, a.ActivationMax);
                q[g * gs + i] = (sbyte)c;
                sum += c;
            }
            corr[g] = a.WeightOffset * sum;
        }
    }

    /// <summary>lowRank[r, j] = Σ_k x̂[r, k] · down[k, j] for <paramref name="rows"/> rows of <paramref name="xh"/> (PaddedK apart).</summary>
    private static void LowRankScalar(ref Args a, float* xh, int rows, float* lora)
    {
        int rank = a.PaddedRank;
        for (int r = 0; r < rows; r++)
        {
            float* x = xh + (long)r * a.PaddedK;
            float* l = lora + (long)r * rank;
            new Span<float>(l, rank).Clear();
            for (int i = 0; i < a.K; i++)
            for (int j = 0; j < rank; j++)
                l[j] = MathF.FusedMultiplyAdd(x[i], a.Down[(long)i * rank + j], l[j]);
        }
    }

    /// <summary>The group's scale and the multiplier that maps its values to codes (0 for an all-zero or non-finite group).</summary>
    private static float GroupScale(float amax, int qmax, out float inverse)
    {
        if (amax < MinMagnitude || !float.IsFinite(amax))
        {
            inverse = 0f;
            return amax < MinMagnitude ? 0f : float.NaN;
        }
        inverse = qmax / amax;
        return amax / qmax;
    }

    private static int Code(float v, float inverse, int qmax)
        => inverse == 0f ? 0 : Math.Clamp((int)MathF.Round(v * inverse, MidpointRounding.ToEven), -qmax, qmax);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CodesAvx512(ref Args a, float* xh, sbyte* q, float* s, int* corr)
    {
        int gs = a.GroupSize;
        var hi = Vector512.Create(a.ActivationMax);
        var lo = Vector512.Create(-a.ActivationMax);
        for (int g = 0; g < a.Groups; g++)
        {
            float* v = xh + g * gs;
            sbyte* qg = q + g * gs;
            var m = Vector512<float>.Zero;
            for (int i = 0; i < gs; i += 16) m = Vector512.Max(m, Vector512.Abs(Vector512.Load(v + i)));
            s[g] = GroupScale(MaxAcross(m), a.ActivationMax, out float inverse);
            if (inverse == 0f)
            {
                corr[g] = 0;
                new Span<sbyte>(qg, gs).Clear();
                continue;
            }
            var scale = Vector512.Create(inverse);
            var sum = Vector512<int>.Zero;
            for (int i = 0; i < gs; i += 16)
            {
                var c = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Load(v + i) * scale), lo), hi);
                Avx512F.ConvertToVector128SByteWithSaturation(c).Store(qg + i);
                sum += c;
            }
            corr[g] = a.WeightOffset * Vector512.Sum(sum);
        }
    }

    /// <summary>The low-rank sums of up to 4 rows, 16 ranks at a time: per input one load of down shared by the rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LowRankAvx512(ref Args a, float* xh, int rows, float* lora)
    {
        int rank = a.PaddedRank, kp = a.PaddedK;
        float* x0 = xh, x1 = rows > 1 ? xh + kp : xh, x2 = rows > 2 ? xh + 2 * kp : xh, x3 = rows > 3 ? xh + 3 * kp : xh;
        float* sink = stackalloc float[32];
        for (int j = 0; j < rank; j += 32)
        {
            bool two = j + 16 < rank;
            Vector512<float> l00 = default, l01 = default, l10 = default, l11 = default;
            Vector512<float> l20 = default, l21 = default, l30 = default, l31 = default;
            float* d = a.Down + j;
            for (int i = 0; i < a.K; i++, d += rank)
            {
                var d0 = Vector512.Load(d);
                var d1 = two ? Vector512.Load(d + 16) : default;
                var v0 = Vector512.Create(x0[i]);
                var v1 = Vector512.Create(x1[i]);
                var v2 = Vector512.Create(x2[i]);
                var v3 = Vector512.Create(x3[i]);
                l00 = Vector512.FusedMultiplyAdd(v0, d0, l00);
                l10 = Vector512.FusedMultiplyAdd(v1, d0, l10);
                l20 = Vector512.FusedMultiplyAdd(v2, d0, l20);
                l30 = Vector512.FusedMultiplyAdd(v3, d0, l30);
                if (two)
                {
                    l01 = Vector512.FusedMultiplyAdd(v0, d1, l01);
                    l11 = Vector512.FusedMultiplyAdd(v1, d1, l11);
                    l21 = Vector512.FusedMultiplyAdd(v2, d1, l21);
                    l31 = Vector512.FusedMultiplyAdd(v3, d1, l31);
                }
            }
            StoreRanks(lora + j, l00, l01, two);
            StoreRanks(rows > 1 ? lora + rank + j : sink, l10, l11, two);
            StoreRanks(rows > 2 ? lora + 2 * rank + j : sink, l20, l21, two);
            StoreRanks(rows > 3 ? lora + 3 * rank + j : sink, l30, l31, two);
        }
    }

    private static void StoreRanks(float* dst, Vector512<float> v0, Vector512<float> v1, bool two)
    {
        v0.Store(dst);
        if (two) v1.Store(dst + 16);
    }

    /// <summary>The largest lane; NaN when any lane is NaN (like a chain of <see cref="MathF.Max(float, float)"/>).</summary>
    private static float MaxAcross(Vector512<float> v)
    {
        var h = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        return MathF.Max(MathF.Max(q[0], q[1]), MathF.Max(q[2], q[3]));
    }

    /// <summary>
    /// The spec, one row: codes [PaddedK] and scales [Groups] exactly as the fast paths make them (same fp32
    /// operations); <paramref name="lowRank"/> [Rank] = x̂ · down summed in double.
    /// </summary>
    public static void QuantizeRowReference(float* x, IntegerMatrix w, sbyte[] codes, float[] scales, double[] lowRank)
    {
        var xh = new float[w.PaddedK];
        for (int i = 0; i < w.K; i++) xh[i] = x[i] * w.InvSmoothAt(i);
        int qmax = w.ActivationMax, gs = w.GroupSize;
        for (int g = 0; g < w.Groups; g++)
        {
            float amax = 0f;
            for (int i = 0; i < gs; i++) amax = MathF.Max(amax, MathF.Abs(xh[g * gs + i]));
            scales[g] = GroupScale(amax, qmax, out float inverse);
            for (int i = 0; i < gs; i++) codes[g * gs + i] = (sbyte)Code(xh[g * gs + i], inverse, qmax);
        }
        for (int j = 0; j < w.Rank; j++)
        {
            double sum = 0;
            for (int i = 0; i < w.K; i++) sum += (double)xh[i] * w.DownAt(i, j);
            lowRank[j] = sum;
        }
    }
}
