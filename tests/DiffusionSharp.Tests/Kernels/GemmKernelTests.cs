using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>
/// The blocked GEMMs on every supported instruction-set path against the double-precision reference over a shape
/// sweep (M, N tails of every vector width, K across 1, 2 and 3 blocks of 512, tiles split in M and N), with guarded
/// buffers and padded strides, plus sampled SD 1.5 shapes.
/// </summary>
public unsafe class GemmKernelTests
{
    private static readonly int[] Ms = [1, 2, 5, 11, 12, 13, 17, 31, 33, 47, 49, 97, 200];
    private static readonly int[] Ns = [1, 3, 8, 15, 16, 17, 31, 32, 33, 47, 49, 65, 600];
    private static readonly int[] Ks = [1, 17, 64, 513, 1030, 7, 100];

    /// <summary>fp32 accumulation against double: the error grows with K; an indexing bug is off by O(1).</summary>
    private static double Atol(int k) => 1e-6 * Math.Max(16, k);

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(17, 5, 3, 3)]
    [InlineData(33, 20, 3, 3)]
    [InlineData(16, 32, 1, 1)]
    [InlineData(40, 48, 1, 3)]
    [InlineData(3, 100, 2, 2)]
    public void Packing_places_every_filter_value_at_its_panel_lane_and_zeroes_the_padding(int outChannels, int inChannels, int kh, int kw)
    {
        int k = kh * kw * inChannels;
        var w = new float[outChannels * k];
        for (int i = 0; i < w.Length; i++) w[i] = i + 1;                     // distinct, non-zero: a misplaced value shows
        foreach (var precision in new[] { WeightPrecision.Float32, WeightPrecision.Float16 })
        {
            using var packed = PackedMatrix.FromConvolution(w, outChannels, inChannels, kh, kw, precision);
            for (int o = 0; o < outChannels; o++)
            for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++)
            for (int ci = 0; ci < inChannels; ci++)
            {
                float expected = w[((o * inChannels + ci) * kh + ky) * kw + kx];   // PyTorch [out, in, kh, kw]
                if (precision != WeightPrecision.Float32) expected = (float)(Half)expected;
                Assert.Equal(expected, packed[o, (ky * kw + kx) * inChannels + ci]);
            }
            int panels = (outChannels + PackedMatrix.PanelWidth - 1) / PackedMatrix.PanelWidth;
            for (int kk = 0; kk < k; kk++)
            for (int lane = outChannels % PackedMatrix.PanelWidth; lane > 0 && lane < PackedMatrix.PanelWidth; lane++)
            {
                long index = (long)(panels - 1) * PackedMatrix.PanelWidth * k + (long)kk * PackedMatrix.PanelWidth + lane;
                float padding = precision == WeightPrecision.Float32 ? ((float*)packed.Storage)[index] : (float)BitConverter.UInt16BitsToHalf(((ushort*)packed.Storage)[index]);
                Assert.Equal(0f, padding);
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaData), MemberType = typeof(KernelTestData))]
    public void Linear_matches_reference_over_shape_sweep(KernelIsa isa)
    {
        int combo = 0;
        foreach (int m in Ms)
        foreach (int n in Ns)
        {
            int k = Ks[combo++ % Ks.Length];
            if ((long)m * n * k > 2_000_000) k = (long)m * n * 64 <= 2_000_000 ? 64 : 16;
            CheckLinear(m, n, k, lda: k + combo % 3, ldc: n + combo % 5, residual: combo % 2 == 0, isa);
        }
    }

    [Theory]
    [MemberData(nameof(IsaData), MemberType = typeof(KernelTestData))]
    public void Linear_residual_may_alias_output(KernelIsa isa)
    {
        const int m = 30, n = 40, k = 1100;
        using var a = GuardedUniform(m * k, 1);
        using var bias = GuardedUniform(n, 3);
        using var w = new PackedMatrix(Uniform(n * k, 2), n, k);
        var residual = Uniform(m * n, 4);
        using var c = GuardedBuffer.From(residual);
        var expected = new float[m * n];
        fixed (float* pr = residual, pe = expected)
        {
            GemmKernel.LinearReference(a.Pointer, k, m, w, bias.Pointer, pe, n, pr, n);
            GemmKernel.Linear(a.Pointer, k, m, w, bias.Pointer, c.Pointer, n, c.Pointer, n, isa);
        }
        Tolerance.AssertClose(expected, c.ToArray(), Atol(k), 1e-5, $"aliased residual, {isa}");
    }

    [Fact]
    public void Linear_sd15_shapes_match_reference_on_sampled_rows()
    {
        CheckLinear(4096, 320, 320, 320, 320, residual: true, KernelSettings.BestIsa, sampledRows: 40);
        CheckLinear(1024, 2560, 640, 640, 2560, residual: false, KernelSettings.BestIsa, sampledRows: 12);
        CheckLinear(77, 320, 768, 768, 320, residual: false, KernelSettings.BestIsa);
        CheckLinear(1, 1280, 1280, 1280, 1280, residual: false, KernelSettings.BestIsa);
    }

    [Theory]
    [MemberData(nameof(IsaData), MemberType = typeof(KernelTestData))]
    public void Linear_propagates_nan_and_infinity_like_reference(KernelIsa isa)
    {
        const int m = 29, n = 45, k = 70;
        var av = Uniform(m * k, 5);
        var wv = Uniform(n * k, 6);
        PlantSpecials(av, 7, 12);
        PlantSpecials(wv, 8, 6);
        using var a = GuardedBuffer.From(av);
        using var w = new PackedMatrix(wv, n, k);
        using var c = new GuardedBuffer(m * n);
        var expected = new float[m * n];
        fixed (float* pe = expected) GemmKernel.LinearReference(a.Pointer, k, m, w, null, pe, n, null, 0);
        GemmKernel.Linear(a.Pointer, k, m, w, null, c.Pointer, n, null, 0, isa);
        AssertSameSpecials(expected, c.Span, Atol(k), 1e-5, $"linear specials, {isa}");
    }

    [Fact]
    public void Every_isa_path_gives_bitwise_identical_results()
    {
        const int m = 61, n = 77, k = 1100;
        using var a = GuardedUniform(m * k, 9);
        using var bias = GuardedUniform(n, 10);
        using var w = new PackedMatrix(Uniform(n * k, 11), n, k);
        float[]? first = null;
        foreach (var isa in SupportedIsas)
        {
            using var c = new GuardedBuffer(m * n);
            GemmKernel.Linear(a.Pointer, k, m, w, bias.Pointer, c.Pointer, n, null, 0, isa);
            if (first == null) first = c.ToArray();
            else AssertBitwiseEqual(first, c.Span, $"linear {isa} vs first path");
        }
    }

    [Theory]
    [MemberData(nameof(IsaData), MemberType = typeof(KernelTestData))]
    public void MultiplyTransposed_matches_reference_over_shape_sweep(KernelIsa isa)
    {
        int combo = 0;
        foreach (int m in Ms[..^1])
        foreach (int n in Ns[..^1])
        {
            int k = Ks[combo++ % Ks.Length];
            int lda = k + combo % 3, ldb = k + combo % 2, ldc = n + combo % 4;
            using var a = GuardedUniform((m - 1) * lda + k, combo);
            using var b = GuardedUniform((n - 1) * ldb + k, combo + 1);
            using var c = new GuardedBuffer((m - 1) * ldc + n, float.NaN);
            var expected = new float[(m - 1) * ldc + n];
            fixed (float* pe = expected)
            {
                GemmKernel.MultiplyTransposedReference(a.Pointer, lda, b.Pointer, ldb, pe, ldc, m, n, k, 0.37f);
                GemmKernel.MultiplyTransposed(a.Pointer, lda, b.Pointer, ldb, c.Pointer, ldc, m, n, k, 0.37f, isa);
            }
            AssertRowsClose(expected, c.Span, m, n, ldc, Atol(k), $"A·Bᵀ {m}x{n}x{k}, {isa}");
        }
    }

    [Theory]
    [MemberData(nameof(IsaData), MemberType = typeof(KernelTestData))]
    public void Multiply_matches_reference_over_shape_sweep(KernelIsa isa)
    {
        int combo = 0;
        foreach (int m in Ms[..^1])
        foreach (int n in Ns[..^1])
        {
            int k = Ks[combo++ % Ks.Length];
            int lda = k + combo % 2, ldb = n + combo % 3, ldc = n + combo % 4;
            using var a = GuardedUniform((m - 1) * lda + k, combo);
            using var b = GuardedUniform((k - 1) * ldb + n, combo + 1);
            using var c = new GuardedBuffer((m - 1) * ldc + n, float.NaN);
            var expected = new float[(m - 1) * ldc + n];
            fixed (float* pe = expected)
            {
                GemmKernel.MultiplyReference(a.Pointer, lda, b.Pointer, ldb, pe, ldc, m, n, k, -1.5f);
                GemmKernel.Multiply(a.Pointer, lda, b.Pointer, ldb, c.Pointer, ldc, m, n, k, -1.5f, isa);
            }
            AssertRowsClose(expected, c.Span, m, n, ldc, Atol(k), $"A·B {m}x{n}x{k}, {isa}");
        }
    }

    [Fact]
    public void Products_with_empty_inner_dimension_are_zero()
    {
        var c = new float[6];
        c.AsSpan().Fill(float.NaN);
        fixed (float* pc = c)
        {
            GemmKernel.Multiply(null, 0, null, 3, pc, 3, 2, 3, 0, 1f);
            Assert.All(c, v => Assert.Equal(0f, v));
            c.AsSpan().Fill(float.NaN);
            GemmKernel.MultiplyTransposed(null, 0, null, 0, pc, 3, 2, 3, 0, 1f);
            Assert.All(c, v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Bad_sizes_and_strides_are_rejected_with_a_clear_message()
    {
        using var w = new PackedMatrix(Uniform(6, 1), 2, 3);
        var buffer = new float[64];
        fixed (float* p = buffer)
        {
            float* q = p;
            var e = Assert.Throws<ArgumentException>(() => GemmKernel.Linear(q, 2, 4, w, null, q, 2));
            Assert.Contains("lda 2", e.Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => GemmKernel.Linear(q, 3, -1, w, null, q, 2));
            Assert.Throws<ArgumentException>(() => GemmKernel.Multiply(q, 4, q, 4, q, 4, 2, 5, 4, 1f));
            Assert.Throws<ArgumentException>(() => GemmKernel.MultiplyTransposed(q, 4, q, 4, q, 4, -2, 4, 4, 1f));
        }
        Assert.Throws<ArgumentException>(() => new PackedMatrix(new float[5], 2, 3));
        Assert.Throws<ArgumentException>(() => new PackedMatrix(Array.Empty<float>(), 0, 3));
    }

    [Fact]
    public void Packed_matrix_keeps_every_weight_and_pads_panels()
    {
        const int n = 45, k = 7;
        var w = Uniform(n * k, 12);
        using var packed = new PackedMatrix(w, n, k);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            Assert.Equal(w[i * k + j], packed[i, j]);
        Assert.Equal(2, packed.PanelCount);
        Assert.Equal(2L * PackedMatrix.PanelWidth * k * sizeof(float), packed.ByteSize);
    }

    private static void CheckLinear(int m, int n, int k, int lda, int ldc, bool residual, KernelIsa isa, int sampledRows = 0)
    {
        using var a = GuardedUniform((m - 1) * lda + k, m + 31 * n + 7 * k);
        using var bias = GuardedUniform(n, 2);
        using var w = new PackedMatrix(Uniform(n * k, 3 + k), n, k);
        int ldr = n + 1;
        using var res = residual ? GuardedUniform((m - 1) * ldr + n, 4) : null;
        using var c = new GuardedBuffer((m - 1) * ldc + n, float.NaN);
        GemmKernel.Linear(a.Pointer, lda, m, w, bias.Pointer, c.Pointer, ldc, res != null ? res.Pointer : null, ldr, isa);

        var expected = new float[n];
        var rows = sampledRows == 0 ? Enumerable.Range(0, m) : Enumerable.Range(0, sampledRows).Select(i => (int)((long)i * (m - 1) / (sampledRows - 1)));
        foreach (int row in rows)
        {
            fixed (float* pe = expected)
                GemmKernel.LinearReference(a.Pointer + (long)row * lda, lda, 1, w, bias.Pointer, pe, n,
                    res != null ? res.Pointer + (long)row * ldr : null, ldr);
            Tolerance.AssertClose(expected, c.Span.Slice(row * ldc, n), Atol(k), 1e-5, $"linear {m}x{n}x{k} row {row}, {isa}");
        }
        for (int row = 0; row < m - 1; row++)
            Assert.True(c.Span.Slice(row * ldc + n, ldc - n).ToArray().All(float.IsNaN), $"linear {m}x{n}x{k} wrote into the row padding");
    }

    private static void AssertRowsClose(float[] expected, Span<float> actual, int m, int n, int ldc, double atol, string what)
    {
        for (int row = 0; row < m; row++)
            Tolerance.AssertClose(expected.AsSpan(row * ldc, n), actual.Slice(row * ldc, n), atol, 1e-5, $"{what} row {row}");
    }
}
