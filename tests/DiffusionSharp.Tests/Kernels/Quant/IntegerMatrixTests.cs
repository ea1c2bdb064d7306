using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;
using static DiffusionSharp.Tests.Kernels.Quant.QuantTestData;

namespace DiffusionSharp.Tests.Kernels.Quant;

/// <summary>
/// The W4A4 / W8A8 layer: packing layout, activation quantizer, and every integer-GEMM path against the scalar
/// double-accumulating reference over a shape sweep (M, N, K tails, groups, ranks, smoothing, bias, residual,
/// convolution patches), with guarded buffers.
/// </summary>
public unsafe class IntegerMatrixTests
{
    [Fact]
    public void Int4_packing_follows_the_documented_byte_layout()
    {
        const int n = 20, k = 70;
        var codes = new sbyte[n * k];
        for (int o = 0; o < n; o++)
        for (int i = 0; i < k; i++)
            codes[o * k + i] = (sbyte)((o * 7 + i * 3) % 16 - 8);
        var scales = Enumerable.Range(0, n * 2).Select(i => 0.5f + i).ToArray();
        using var w = IntegerMatrix.W4A4(n, k, 64, codes, scales, [], 0, [], []);
        Assert.Equal(128, w.PaddedK);
        Assert.Equal(2, w.Groups);
        byte* panel0 = w.PanelWeights(0), panel1 = w.PanelWeights(1);
        // Octet 0 of panel 0, output 3: byte 4*3 + 1 holds input 1 (low) and input 5 (high), each + 8.
        Assert.Equal((codes[3 * k + 1] + 8) | ((codes[3 * k + 5] + 8) << 4), panel0[4 * 3 + 1]);
        // Octet 2 (inputs 16..23) of panel 1, output 16 + 2: byte 2 * 64 + 4 * 2 + 3 holds inputs 19 and 23.
        Assert.Equal((codes[18 * k + 19] + 8) | ((codes[18 * k + 23] + 8) << 4), panel1[2 * 64 + 4 * 2 + 3]);
        // Past K and past N the codes are 0 (stored 8).
        Assert.Equal(8 | (8 << 4), panel0[(72 / 8) * 64 + 4 * 0 + 0]);
        Assert.Equal(8 | (8 << 4), panel1[4 * 15]);
        for (int o = 0; o < n; o++)
        {
            for (int i = 0; i < w.PaddedK; i++) Assert.Equal(i < k ? codes[o * k + i] : 0, w.Weight(o, i));
            Assert.Equal(scales[2 * o + 1], w.Scale(o, 1));
        }
    }

    [Fact]
    public void Int8_packing_follows_the_documented_byte_layout()
    {
        const int n = 17, k = 9;
        var codes = new sbyte[n * k];
        for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)(i * 37 % 255 - 127);
        using var w = IntegerMatrix.W8A8(n, k, codes, Enumerable.Repeat(1f, n).ToArray());
        Assert.Equal(64, w.PaddedK);
        Assert.Equal(1, w.Groups);
        // Quad 1 (inputs 4..7), output 5: byte 64 + 4 * 5 + 2 holds input 6, + 128.
        Assert.Equal(codes[5 * k + 6] + 128, w.PanelWeights(0)[64 + 4 * 5 + 2]);
        Assert.Equal(codes[16 * k + 8] + 128, w.PanelWeights(1)[2 * 64 + 0]);
        for (int o = 0; o < n; o++)
        for (int i = 0; i < w.PaddedK; i++)
            Assert.Equal(i < k ? codes[o * k + i] : 0, w.Weight(o, i));
    }

    [Fact]
    public void Invalid_codes_scales_and_factors_are_rejected_naming_the_argument()
    {
        Assert.Contains("[-8, 7]", Assert.Throws<ArgumentException>(() => IntegerMatrix.W4A4(1, 2, 64, [0, 8], [1f], [], 0, [], [])).Message);
        Assert.Contains("scale", Assert.Throws<ArgumentException>(() => IntegerMatrix.W4A4(1, 2, 64, [0, 1], [float.NaN], [], 0, [], [])).Message);
        Assert.Contains("Smoothing", Assert.Throws<ArgumentException>(() => IntegerMatrix.W4A4(1, 2, 64, [0, 1], [1f], [1f], 0, [], [])).Message);
        Assert.Contains("smoothing factor", Assert.Throws<ArgumentException>(() => IntegerMatrix.W4A4(1, 2, 64, [0, 1], [1f], [1f, 0f], 0, [], [])).Message);
        Assert.Contains("group size", Assert.Throws<ArgumentException>(() => IntegerMatrix.W4A4(1, 2, 40, [0, 1], [1f], [], 0, [], [])).Message);
        Assert.Contains("rank 1", Assert.Throws<ArgumentException>(() => IntegerMatrix.W4A4(1, 2, 64, [0, 1], [1f], [], 1, [1f], [1f])).Message);
    }

    [Theory]
    [InlineData(4, 64, 0, false, false)]
    [InlineData(4, 32, 32, true, false)]
    [InlineData(4, 128, 7, true, false)]
    [InlineData(4, 16, 0, true, false)]
    [InlineData(4, 256, 32, false, false)]
    [InlineData(8, 0, 0, false, false)]
    [InlineData(4, 64, 0, false, true)]
    [InlineData(4, 32, 32, true, true)]
    [InlineData(4, 16, 7, true, true)]
    [InlineData(4, 256, 16, false, true)]
    public void Vector_quantizer_makes_the_reference_codes_and_scales_exactly(int bits, int group, int rank, bool smooth, bool asymmetric)
    {
        const int m = 37, n = 3, k = 203;
        using var w = bits == 4 ? RandomW4A4(n, k, group, rank, smooth, 11, asymmetric) : RandomW8A8(n, k, 11);
        var x = Uniform(m * k, 12, 3f);
        x[5] = 0f;
        for (int i = 2 * k; i < 3 * k; i++) x[i] = 0f;    // an all-zero row
        for (int i = 3 * k; i < 4 * k; i++) x[i] = 0.75f; // a constant row (asymmetric: exact, through the zero point)
        for (int i = 5 * k; i < 6 * k; i++) x[i] = MathF.Abs(x[i]); // one-signed
        x[4 * k + 3] = float.NaN;                          // non-finite values: their group's scale is NaN, its codes 0
        x[6 * k + k - 1] = float.PositiveInfinity;         // (in the last, partial group)
        x[8 * k + 70] = float.NegativeInfinity;
        var vector = new QuantizedActivations(m, w);
        var codes = new sbyte[m * w.PaddedK];
        var scales = new float[m * w.Groups];
        var lowRank = new float[m * w.BranchWidth];
        fixed (float* px = x)
        {
            ActivationQuantizer.Quantize(ActivationRows.Matrix(px, k, k), m, w, vector, vectorized: true);
            new ReadOnlySpan<sbyte>(vector.Codes, codes.Length).CopyTo(codes);
            new ReadOnlySpan<float>(vector.Scales, scales.Length).CopyTo(scales);
            if (lowRank.Length > 0) new ReadOnlySpan<float>(vector.LowRank, lowRank.Length).CopyTo(lowRank);
            var refCodes = new sbyte[w.PaddedK];
            var refScales = new float[w.Groups];
            var refLowRank = new double[w.Rank];
            var refZeros = new float[w.Groups];
            for (int r = 0; r < m; r++)
            {
                ActivationQuantizer.QuantizeRowReference(px + r * k, w, refCodes, refScales, refLowRank, refZeros);
                Assert.Equal(refCodes, codes.AsSpan(r * w.PaddedK, w.PaddedK).ToArray());
                Assert.Equal(refScales, scales.AsSpan(r * w.Groups, w.Groups).ToArray());
                if (asymmetric)
                {
                    Assert.Equal(refZeros, lowRank.AsSpan(r * w.BranchWidth + w.PaddedRank, w.Groups).ToArray());
                    Assert.All(lowRank.AsSpan(r * w.BranchWidth + w.PaddedRank + w.Groups, w.BranchWidth - w.PaddedRank - w.Groups).ToArray(), v => Assert.Equal(0f, v));
                }
                for (int g = 0; g < w.Groups; g++)
                {
                    int sum = 0;
                    for (int i = 0; i < w.GroupSize; i++) sum += refCodes[g * w.GroupSize + i];
                    Assert.Equal(w.WeightOffset * sum, vector.Corrections[r * w.Groups + g]);
                }
                bool finite = x.AsSpan(r * k, k).ToArray().All(float.IsFinite);
                for (int j = 0; j < w.Rank; j++)
                    Assert.True(finite ? Math.Abs(lowRank[r * w.BranchWidth + j] - refLowRank[j]) <= 1e-5 * (1 + Math.Abs(refLowRank[j]))
                        : !float.IsFinite(lowRank[r * w.BranchWidth + j]), $"row {r} rank {j}");
            }
        }
        if (asymmetric)
        {
            Assert.All(codes, c => Assert.InRange(c, -8, 7));
            // Every finite group is reconstructed within half a step: x̂ ≈ s · q + zero.
            for (int r = 0; r < m; r++)
            for (int g = 0; g < w.Groups; g++)
            {
                float s = scales[r * w.Groups + g], zero = lowRank[r * w.BranchWidth + w.PaddedRank + g];
                if (float.IsNaN(s)) continue;
                for (int i = g * w.GroupSize; i < Math.Min(k, (g + 1) * w.GroupSize); i++)
                {
                    double xh = x[r * k + i] * w.InvSmoothAt(i), back = s * codes[r * w.PaddedK + i] + (double)zero;
                    Assert.True(Math.Abs(back - xh) <= s / 2 * 1.0001 + 1e-6 * Math.Abs(xh), $"row {r} input {i}: {back} for {xh} (step {s})");
                }
            }
            if (!smooth && w.GroupSize <= k)
            {
                Assert.Equal(0f, scales[3 * w.Groups]);                         // the constant row's first group: no step, exact
                Assert.Equal(0.75f, lowRank[3 * w.BranchWidth + w.PaddedRank]);
            }
        }
        else Assert.All(codes, c => Assert.InRange(c, -w.ActivationMax, w.ActivationMax));
        Assert.Equal(0f, scales[2 * w.Groups]);
        Assert.Contains(scales.AsSpan(4 * w.Groups, w.Groups).ToArray(), float.IsNaN);
        Assert.Contains(scales.AsSpan(6 * w.Groups, w.Groups).ToArray(), float.IsNaN);
    }

    private static readonly int[] Ms = [1, 3, 4, 5, 9, 33, 70];
    private static readonly int[] Ns = [1, 15, 16, 17, 32, 33, 47, 100];
    private static readonly int[] Ks = [1, 16, 63, 64, 65, 96, 130, 200];

    [Theory]
    [MemberData(nameof(Int4Paths), MemberType = typeof(QuantTestData))]
    public void W4A4_matches_reference_over_shape_sweep(IntegerGemmPath path)
    {
        int combo = 0;
        foreach (int m in Ms)
        foreach (int n in Ns)
        {
            int k = Ks[combo % Ks.Length];
            int group = new[] { 64, 32, 128 }[combo % 3];
            int rank = new[] { 0, 32, 5, 16 }[combo % 4];
            bool asymmetric = combo % 7 < 3;
            using var w = RandomW4A4(n, k, group, rank, smooth: combo % 2 == 0, seed: combo, asymmetric);
            CheckLinear(w, m, residual: combo % 3 == 0, bias: combo % 5 != 0, path, $"W4A4 m {m} n {n} k {k} g {group} r {rank} asymmetric {asymmetric}");
            combo++;
        }
    }

    [Theory]
    [MemberData(nameof(Int8Paths), MemberType = typeof(QuantTestData))]
    public void W8A8_matches_reference_over_shape_sweep(IntegerGemmPath path)
    {
        int combo = 0;
        foreach (int m in Ms)
        foreach (int n in Ns)
        {
            int k = Ks[combo % Ks.Length];
            using var w = RandomW8A8(n, k, combo);
            CheckLinear(w, m, residual: combo % 2 == 0, bias: true, path, $"W8A8 m {m} n {n} k {k}");
            combo++;
        }
    }

    [Theory]
    [MemberData(nameof(Int4PathsBothActivations), MemberType = typeof(QuantTestData))]
    public void W4A4_convolution_patches_match_reference(IntegerGemmPath path, bool asymmetric)
    {
        var g = new Conv2dGeometry(2, 7, 5, 24, 40, 3, 3, 2, 1, 1, 1, 0, 1);
        using var w = RandomW4A4(g.OutChannels, g.PatchSize, 64, 32, smooth: true, seed: 3, asymmetric);
        int pixels = (int)g.OutputPixels;
        using var x = GuardedUniform(g.Batch * g.InHeight * g.InWidth * g.InChannels, 4, 2f);
        using var bias = GuardedUniform(g.OutChannels, 5);
        using var c = new GuardedBuffer(pixels * g.OutChannels);
        var expected = new float[pixels * g.OutChannels];
        var rows = ActivationRows.Patches(x.Pointer, g);
        fixed (float* pe = expected) w.ForwardReference(rows, pixels, bias.Pointer, pe, g.OutChannels);
        w.Forward(rows, pixels, bias.Pointer, c.Pointer, g.OutChannels, null, 0, path);
        Tolerance.AssertClose(expected, c.ToArray(), 1e-4, 1e-4, $"conv patches, {path}");
    }

    [Fact]
    public void All_paths_give_bitwise_identical_results()
    {
        foreach (int bits in new[] { 4, 8, 5 })             // 5: 4-bit with asymmetric activations
        {
            const int m = 45, n = 70, k = 300;
            using var w = bits != 8 ? RandomW4A4(n, k, 64, 32, true, 8, asymmetric: bits == 5) : RandomW8A8(n, k, 8);
            using var x = GuardedUniform(m * k, 9, 2f);
            float[]? first = null;
            foreach (var path in Paths(w.Bits))
            {
                using var c = new GuardedBuffer(m * n);
                w.Forward(ActivationRows.Matrix(x.Pointer, k, k), m, null, c.Pointer, n, null, 0, path);
                if (first == null) first = c.ToArray();
                else AssertBitwiseEqual(first, c.Span, $"{bits}-bit {path}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Int4Paths), MemberType = typeof(QuantTestData))]
    public void Residual_may_alias_output(IntegerGemmPath path)
    {
        const int m = 13, n = 40, k = 150;
        using var w = RandomW4A4(n, k, 64, 32, true, 21);
        using var x = GuardedUniform(m * k, 22);
        var residual = Uniform(m * n, 23);
        var expected = new float[m * n];
        using var c = GuardedBuffer.From(residual);
        fixed (float* pr = residual, pe = expected) w.ForwardReference(ActivationRows.Matrix(x.Pointer, k, k), m, null, pe, n, pr, n);
        w.Forward(ActivationRows.Matrix(x.Pointer, k, k), m, null, c.Pointer, n, c.Pointer, n, path);
        Tolerance.AssertClose(expected, c.ToArray(), 1e-4, 1e-4, $"aliased residual, {path}");
    }

    [Theory]
    [MemberData(nameof(Int4PathsBothActivations), MemberType = typeof(QuantTestData))]
    public void A_non_finite_input_makes_its_row_NaN_and_leaves_the_others(IntegerGemmPath path, bool asymmetric)
    {
        const int m = 6, n = 20, k = 100;
        using var w = RandomW4A4(n, k, 64, 16, false, 31, asymmetric);
        var xv = Uniform(m * k, 32);
        xv[1 * k + 70] = float.NaN;
        xv[4 * k + 3] = float.PositiveInfinity;
        using var x = GuardedBuffer.From(xv);
        using var c = new GuardedBuffer(m * n);
        var expected = new float[m * n];
        fixed (float* pe = expected) w.ForwardReference(ActivationRows.Matrix(x.Pointer, k, k), m, null, pe, n);
        w.Forward(ActivationRows.Matrix(x.Pointer, k, k), m, null, c.Pointer, n, null, 0, path);
        var actual = c.ToArray();
        for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++)
        {
            bool bad = r == 1 || r == 4;
            Assert.Equal(bad, float.IsNaN(expected[r * n + j]));
            Assert.Equal(bad, float.IsNaN(actual[r * n + j]));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void W4A4_output_approximates_the_dequantized_product_it_encodes(bool asymmetric)
    {
        // Independent of the packing: y ≈ Σ_k (x/λ)[k] · (q[n,k] · s[n,g]) + Σ_j (x/λ · down)[j] · up[n,j] up to
        // the activation rounding (at most half a step, s_x / 2, per input).
        const int m = 8, n = 24, k = 128, rank = 4;
        var rng = new Random(41);
        var codes = new sbyte[n * k];
        for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)rng.Next(-8, 8);
        var scales = Floats(rng, n * 2, 0.01f, 0.02f);
        var lambda = Floats(rng, k, 0.5f, 2f);
        var down = Floats(rng, k * rank, -0.1f, 0.1f);
        var up = Floats(rng, n * rank, -0.1f, 0.1f);
        using var w = IntegerMatrix.W4A4(n, k, 64, codes, scales, lambda, rank, down, up, asymmetric);
        var x = Uniform(m * k, 42);
        if (asymmetric) for (int i = 0; i < x.Length; i += 3) x[i] = MathF.Abs(x[i]) + 0.5f;   // skewed groups
        var y = new float[m * n];
        fixed (float* px = x, py = y) w.Forward(ActivationRows.Matrix(px, k, k), m, null, py, n);
        for (int r = 0; r < m; r++)
        for (int o = 0; o < n; o++)
        {
            double exact = 0, bound = 0;
            for (int i = 0; i < k; i++)
            {
                double xh = x[r * k + i] / lambda[i];
                double wq = codes[o * k + i] * scales[o * 2 + i / 64];
                exact += xh * wq;
                bound += Math.Abs(wq) * (2.0 / lambda.Min()) / 7 / 2;
            }
            for (int j = 0; j < rank; j++)
            {
                double l = 0;
                for (int i = 0; i < k; i++) l += x[r * k + i] / lambda[i] * down[i * rank + j];
                exact += l * up[o * rank + j];
            }
            Assert.True(Math.Abs(y[r * n + o] - exact) <= bound, $"[{r}, {o}]: {y[r * n + o]} vs {exact} (bound {bound})");
        }
    }

    private static void CheckLinear(IntegerMatrix w, int m, bool residual, bool bias, IntegerGemmPath path, string what)
    {
        int n = w.N, k = w.K, lda = k + m % 3, ldc = n + m % 2;
        using var a = GuardedUniform(m * lda, m + 7 * n, 2f);
        using var b = bias ? GuardedUniform(n, 3) : null;
        var res = residual ? Uniform(m * ldc, 5) : null;
        using var r = res != null ? GuardedBuffer.From(res) : null;
        using var c = new GuardedBuffer(m * ldc, float.NaN);
        var expected = new float[m * ldc];
        var rows = ActivationRows.Matrix(a.Pointer, lda, k);
        fixed (float* pe = expected)
            w.ForwardReference(rows, m, b != null ? b.Pointer : null, pe, ldc, r != null ? r.Pointer : null, ldc);
        w.Forward(rows, m, b != null ? b.Pointer : null, c.Pointer, ldc, r != null ? r.Pointer : null, ldc, path);
        var actual = c.ToArray();
        for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
        {
            Assert.True(float.IsNaN(actual[i * ldc + j]), $"{what}: wrote past N at [{i}, {j}]");
            actual[i * ldc + j] = expected[i * ldc + j] = 0f;
        }
        Tolerance.AssertClose(expected, actual, 1e-4, 1e-4, $"{what}, {path}");
    }
}
