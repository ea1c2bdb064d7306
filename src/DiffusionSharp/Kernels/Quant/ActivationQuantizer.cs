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
/// qmax = 7 (int4) or 127 (int8); a non-finite input makes its row's outputs NaN. Asymmetric activations (W4A4 with
/// <see cref="IntegerMatrix.AsymmetricActivations"/>) code each group over its own range instead:
/// <code>
/// per group g:  lo = min x̂[k], hi = max x̂[k] (the zero padding past K included);  s = (hi − lo) / 15
///               q[k] = clamp(round_to_even((x̂[k] − lo) · (15 / (hi − lo))), 0, 15) − 8;  zero = lo + 8 · s
///               hi − lo &lt; 1e-30 (a constant group): s = 0, q = 0, zero = lo (exact);  non-finite: s = zero = NaN, q = 0
/// </code>
/// and write the zero points after the low-rank inputs, where the up projection multiplies them by sw · Σ qw. The codes, scales and corrections of
/// the vectorized path equal the reference's bit for bit (same fp32 operations, round-to-even conversion); the
/// low-rank sums are the same FMA chains as the scalar path (the reference sums in double).
/// <see cref="IntegerGemm"/> quantizes each tile's rows itself (<see cref="QuantizeRows"/>), so a layer is one
/// scheduler call; <see cref="Quantize"/> does all rows at once (tests).
/// Cost: O(K (1 + r)) per row, the r FMAs of the low-rank branch dominating (measured in docs/QUANTIZATION.md).
/// </summary>
internal static unsafe class ActivationQuantizer
{
    private const int RowsPerChunk = 16;

    /// <summary>Rows whose low-rank sums run together: 4 rows x 2 vectors = 8 independent FMA chains for rank 32.</summary>
    private const int LowRankRows = 4;

    /// <summary>Groups whose largest magnitude is below this quantize to zero (qmax / a would overflow near 2e-38).</summary>
    private const float MinMagnitude = 1e-30f;

    /// <summary>What quantizing a row needs from its <see cref="IntegerMatrix"/>, as plain values for the kernels.</summary>
    internal struct Args
    {
        public int K, PaddedK, Groups, GroupSize, PaddedRank, BranchWidth, ActivationMax, WeightOffset;
        public bool Asymmetric;
        public float* InvSmooth;
        public float* Down;
        public bool Vectorized;

        public Args(IntegerMatrix w, bool vectorized)
        {
            K = w.K;
            PaddedK = w.PaddedK;
            Groups = w.Groups;
            GroupSize = w.GroupSize;
            PaddedRank = w.PaddedRank;
            BranchWidth = w.BranchWidth;
            Asymmetric = w.AsymmetricActivations;
            ActivationMax = w.ActivationMax;
            WeightOffset = w.WeightOffset;
            InvSmooth = w.InvSmooth;
            Down = w.Down;
            Vectorized = vectorized && Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
        }
    }

    private struct Job
    {
        public Args Args;
        public ActivationRows Rows;
        public int M;
        public QuantizedActivations Out;
    }

    /// <summary>All <paramref name="m"/> rows into <paramref name="output"/>, in chunks of 16 rows over the scheduler.</summary>
    public static void Quantize(in ActivationRows rows, int m, IntegerMatrix w, in QuantizedActivations output, bool vectorized)
    {
        var job = new Job { Args = new Args(w, vectorized), Rows = rows, M = m, Out = output };
        ThreadScheduler.Current.For((m + RowsPerChunk - 1) / RowsPerChunk, &Chunk, &job);
    }

    private static void Chunk(void* context, int chunk)
    {
        ref Job j = ref Unsafe.AsRef<Job>(context);
        int r0 = chunk * RowsPerChunk, count = Math.Min(RowsPerChunk, j.M - r0);
        ref Args a = ref j.Args;
        QuantizeRows(ref a, j.Rows, r0, count, j.Out.Codes + (long)r0 * a.PaddedK, j.Out.Scales + (long)r0 * a.Groups,
            j.Out.Corrections + (long)r0 * a.Groups, a.BranchWidth > 0 ? j.Out.LowRank + (long)r0 * a.BranchWidth : null);
    }

    /// <summary>
    /// Rows [row0, row0 + count) on the calling thread, into buffers that start at row0: codes [count, PaddedK], scales
    /// and corrections [count, Groups], branch inputs [count, BranchWidth] (null without a branch): the low-rank sums,
    /// then with asymmetric activations the groups' zero points (zeros in the padding).
    /// </summary>
    public static void QuantizeRows(ref Args a, in ActivationRows rows, int row0, int count, sbyte* codes, float* scales, int* corr, float* lora)
    {
        float* gather = rows.IsContiguous ? null : Scratch.Floats(ScratchSlot.QuantRow, a.K);
        float* smoothed = Scratch.Floats(ScratchSlot.QuantSmoothed, (long)LowRankRows * a.PaddedK);
        for (int i0 = 0; i0 < count; i0 += LowRankRows)
        {
            int n = Math.Min(LowRankRows, count - i0);
            for (int i = 0; i < n; i++)
            {
                int r = i0 + i;
                float* xh = smoothed + (long)i * a.PaddedK;
                float* x = rows.Row(row0 + r, gather);
                float* zeros = null;
                if (a.Asymmetric)
                {
                    zeros = lora + (long)r * a.BranchWidth + a.PaddedRank;
                    new Span<float>(zeros + a.Groups, a.BranchWidth - a.PaddedRank - a.Groups).Clear();
                }
                if (a.Vectorized)
                {
                    SmoothedCodesAvx512(ref a, x, xh, codes + (long)r * a.PaddedK, scales + (long)r * a.Groups, corr + (long)r * a.Groups, zeros);
                }
                else
                {
                    Smooth(x, ref a, xh);
                    CodesScalar(ref a, xh, codes + (long)r * a.PaddedK, scales + (long)r * a.Groups, corr + (long)r * a.Groups, zeros);
                }
            }
            if (a.PaddedRank == 0) continue;
            if (a.Vectorized) LowRankAvx512(ref a, smoothed, n, lora + (long)i0 * a.BranchWidth);
            else LowRankScalar(ref a, smoothed, n, lora + (long)i0 * a.BranchWidth);
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

    private static void CodesScalar(ref Args a, float* xh, sbyte* q, float* s, int* corr, float* zeros)
    {
        int gs = a.GroupSize;
        for (int g = 0; g < a.Groups; g++)
        {
            float* v = xh + g * gs;
            if (zeros != null)
            {
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                bool finite = true;
                for (int i = 0; i < gs; i++)
                {
                    lo = MathF.Min(lo, v[i]);
                    hi = MathF.Max(hi, v[i]);
                    finite &= float.IsFinite(v[i]);
                }
                s[g] = AsymmetricScale(finite ? lo : float.NaN, hi, out float inv, out zeros[g]);
                int total = 0;
                for (int i = 0; i < gs; i++)
                {
                    int c = AsymmetricCode(v[i], lo, inv);
                    q[g * gs + i] = (sbyte)c;
                    total += c;
                }
                corr[g] = a.WeightOffset * total;
                continue;
            }
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
            float* l = lora + (long)r * a.BranchWidth;
            new Span<float>(l, rank).Clear();
            for (int i = 0; i < a.K; i++)
            for (int j = 0; j < rank; j++)
                l[j] = MathF.FusedMultiplyAdd(x[i], a.Down[(long)i * rank + j], l[j]);
        }
    }

    /// <summary>The group's scale and the multiplier that maps its values to codes (0 for an all-zero or non-finite group).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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

    /// <summary>The asymmetric group's scale, code multiplier and zero point from its minimum and maximum (NaN <paramref name="lo"/>: a non-finite group).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float AsymmetricScale(float lo, float hi, out float inverse, out float zero)
    {
        float range = hi - lo;
        if (!float.IsFinite(range))
        {
            inverse = 0f;
            zero = float.NaN;
            return float.NaN;
        }
        if (range < MinMagnitude)
        {
            inverse = 0f;
            zero = lo;
            return 0f;
        }
        inverse = 15f / range;
        float s = range / 15f;
        zero = MathF.FusedMultiplyAdd(8f, s, lo);
        return s;
    }

    private static int AsymmetricCode(float v, float lo, float inverse)
        => inverse == 0f ? 0 : Math.Clamp((int)MathF.Round((v - lo) * inverse, MidpointRounding.ToEven), 0, 15) - 8;

    /// <summary>
    /// One pass per group for the vectorized path: x̂ = x · (1/λ) is written to <paramref name="xh"/> (the low-rank
    /// branch reads it) while the group's largest magnitude is taken, then the codes come from the group just written,
    /// still in L1 (groups are whole vectors: 16 to 256 inputs for 4 bits, the padded row for 8). The group K falls in is
    /// smoothed and zero-padded once first (<see cref="SmoothTail"/>). The fp32 operations
    /// per value are those of <see cref="CodesScalar"/>, so the codes, scales and corrections are the same bit for bit.
    /// A group with a NaN or an infinity gets scale NaN and zero codes: <c>vmaxps</c> does not propagate NaN, so a
    /// separate FMA-by-zero accumulator (NaN for any non-finite value) is tested once per group by one compare.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SmoothedCodesAvx512(ref Args a, float* x, float* xh, sbyte* q, float* s, int* corr, float* zeros)
    {
        int gs = a.GroupSize, groups = a.Groups, qmax = a.ActivationMax;
        int fullGroups = a.K / gs;
        float* inv = a.InvSmooth;
        var hi = Vector512.Create(qmax);
        var lo = Vector512.Create(-qmax);
        for (int g = 0; g < groups; g++)
        {
            int k0 = g * gs;
            float* src = x + k0, dst = xh + k0;
            bool smoothing = inv != null;
            if (g >= fullGroups)
            {
                // The group K falls in, and any past it: smoothed and zero-padded once, then read as already smoothed.
                if (g == fullGroups) SmoothTail(x, ref a, xh, k0);
                src = dst;
                smoothing = false;
            }
            if (zeros != null)
            {
                AsymmetricGroupAvx512(ref a, src, dst, smoothing ? inv + k0 : null, q + k0, out s[g], out corr[g], out zeros[g]);
                continue;
            }
            var m = Vector512<float>.Zero;
            var nonFinite = Vector512<float>.Zero;
            for (int i = 0; i < gs; i += 16)
            {
                var v = Vector512.Load(src + i);
                if (smoothing) v *= Vector512.Load(inv + k0 + i);
                v.Store(dst + i);
                m = Avx512F.Max(m, Vector512.Abs(v));
                nonFinite = Vector512.FusedMultiplyAdd(v, Vector512<float>.Zero, nonFinite);
            }
            float amax = Vector512.EqualsAll(nonFinite, Vector512<float>.Zero) ? MaxLane(m) : float.NaN;
            s[g] = GroupScale(amax, qmax, out float inverse);
            sbyte* qg = q + k0;
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
                var c = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Load(dst + i) * scale), lo), hi);
                Avx512F.ConvertToVector128SByteWithSaturation(c).Store(qg + i);
                sum += c;
            }
            corr[g] = a.WeightOffset * Vector512.Sum(sum);
        }
    }

    /// <summary>One asymmetric group of the vectorized path: the same fp32 operations per value as <see cref="CodesScalar"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AsymmetricGroupAvx512(ref Args a, float* src, float* dst, float* inv, sbyte* qg, out float scale, out int corr, out float zero)
    {
        int gs = a.GroupSize;
        var lo = Vector512.Create(float.PositiveInfinity);
        var hi = Vector512.Create(float.NegativeInfinity);
        var nonFinite = Vector512<float>.Zero;
        for (int i = 0; i < gs; i += 16)
        {
            var v = Vector512.Load(src + i);
            if (inv != null) v *= Vector512.Load(inv + i);
            v.Store(dst + i);
            lo = Avx512F.Min(lo, v);
            hi = Avx512F.Max(hi, v);
            nonFinite = Vector512.FusedMultiplyAdd(v, Vector512<float>.Zero, nonFinite);
        }
        float min = MinLane(lo);
        bool finite = Vector512.EqualsAll(nonFinite, Vector512<float>.Zero);
        scale = AsymmetricScale(finite ? min : float.NaN, MaxLane(hi), out float inverse, out zero);
        if (inverse == 0f)
        {
            corr = 0;
            new Span<sbyte>(qg, gs).Clear();
            return;
        }
        var lower = Vector512.Create(min);
        var multiplier = Vector512.Create(inverse);
        var top = Vector512.Create(15);
        var eight = Vector512.Create(8);
        var sum = Vector512<int>.Zero;
        for (int i = 0; i < gs; i += 16)
        {
            var c = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32((Vector512.Load(dst + i) - lower) * multiplier), Vector512<int>.Zero), top) - eight;
            Avx512F.ConvertToVector128SByteWithSaturation(c).Store(qg + i);
            sum += c;
        }
        corr = a.WeightOffset * Vector512.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MinLane(Vector512<float> m)
    {
        var h = Avx.Min(m.GetLower(), m.GetUpper());
        var m4 = Sse.Min(h.GetLower(), h.GetUpper());
        m4 = Sse.Min(m4, Sse.Shuffle(m4, m4, 0b_01_00_11_10));
        m4 = Sse.Min(m4, Sse.Shuffle(m4, m4, 0b_10_11_00_01));
        return m4.ToScalar();
    }

    /// <summary>x̂ for inputs [k0, K) into <paramref name="xh"/>, zeros from K to PaddedK.</summary>
    private static void SmoothTail(float* x, ref Args a, float* xh, int k0)
    {
        float* inv = a.InvSmooth;
        for (int i = k0; i < a.K; i++) xh[i] = inv != null ? x[i] * inv[i] : x[i];
        new Span<float>(xh + a.K, a.PaddedK - a.K).Clear();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MaxLane(Vector512<float> m)
    {
        var h = Avx.Max(m.GetLower(), m.GetUpper());
        var m4 = Sse.Max(h.GetLower(), h.GetUpper());
        m4 = Sse.Max(m4, Sse.Shuffle(m4, m4, 0b_01_00_11_10));
        m4 = Sse.Max(m4, Sse.Shuffle(m4, m4, 0b_10_11_00_01));
        return m4.ToScalar();
    }

    /// <summary>The low-rank sums of up to 4 rows, 16 ranks at a time: per input one load of down shared by the rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LowRankAvx512(ref Args a, float* xh, int rows, float* lora)
    {
        int rank = a.PaddedRank, kp = a.PaddedK, stride = a.BranchWidth;
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
            StoreRanks(rows > 1 ? lora + stride + j : sink, l10, l11, two);
            StoreRanks(rows > 2 ? lora + 2 * stride + j : sink, l20, l21, two);
            StoreRanks(rows > 3 ? lora + 3 * stride + j : sink, l30, l31, two);
        }
    }

    private static void StoreRanks(float* dst, Vector512<float> v0, Vector512<float> v1, bool two)
    {
        v0.Store(dst);
        if (two) v1.Store(dst + 16);
    }

    /// <summary>
    /// The spec, one row: codes [PaddedK] and scales [Groups] exactly as the fast paths make them (same fp32
    /// operations); <paramref name="lowRank"/> [Rank] = x̂ · down summed in double; <paramref name="zeros"/> [Groups]:
    /// the zero points of asymmetric activations (untouched for symmetric ones).
    /// </summary>
    public static void QuantizeRowReference(float* x, IntegerMatrix w, sbyte[] codes, float[] scales, double[] lowRank, float[] zeros)
    {
        var xh = new float[w.PaddedK];
        for (int i = 0; i < w.K; i++) xh[i] = x[i] * w.InvSmoothAt(i);
        int qmax = w.ActivationMax, gs = w.GroupSize;
        for (int g = 0; g < w.Groups; g++)
        {
            if (w.AsymmetricActivations)
            {
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                bool finite = true;
                for (int i = 0; i < gs; i++)
                {
                    float v = xh[g * gs + i];
                    lo = MathF.Min(lo, v);
                    hi = MathF.Max(hi, v);
                    finite &= float.IsFinite(v);
                }
                scales[g] = AsymmetricScale(finite ? lo : float.NaN, hi, out float inv, out zeros[g]);
                for (int i = 0; i < gs; i++) codes[g * gs + i] = (sbyte)AsymmetricCode(xh[g * gs + i], lo, inv);
                continue;
            }
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
