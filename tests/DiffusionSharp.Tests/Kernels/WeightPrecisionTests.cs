using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Tests.Support;
using DiffusionSharp.Threading;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>
/// 16-bit weight storage (<see cref="WeightPrecision"/>): the rounding at packing against published bit patterns, the
/// vector widening on every path against the scalar reference over all 65,536 inputs, the GEMM and convolution with
/// 16-bit panels against the double reference over a shape sweep, bitwise equality with fp32 panels when the weights
/// are exactly representable (the strong test: the 16-bit path changes storage, not arithmetic), and determinism.
/// </summary>
public unsafe class WeightPrecisionTests
{
    public static TheoryData<KernelIsa, WeightPrecision> IsaPrecisionData
    {
        get
        {
            var data = new TheoryData<KernelIsa, WeightPrecision>();
            foreach (var isa in SupportedIsas)
            {
                data.Add(isa, WeightPrecision.Float16);
                data.Add(isa, WeightPrecision.BFloat16);
            }
            return data;
        }
    }

    [Theory]
    [InlineData(1f, 0x3C00)]
    [InlineData(-2f, 0xC000)]
    [InlineData(1f / 3f, 0x3555)]
    [InlineData(65504f, 0x7BFF)]
    [InlineData(65520f, 0x7C00)] // halfway to the next binade: rounds to even, which is infinity
    [InlineData(5.9604645e-8f, 0x0001)] // 2^-24, the smallest subnormal
    [InlineData(1.00048828125f, 0x3C00)] // 1 + 2^-11: a tie, rounds to the even 1.0
    [InlineData(1.00146484375f, 0x3C02)] // 1 + 3 * 2^-11: a tie, rounds to the even 1 + 2^-9
    [InlineData(-0f, 0x8000)]
    public void Fp16_narrowing_rounds_to_nearest_even(float value, int expected)
        => Assert.Equal((ushort)expected, WeightConversion.Narrow(value, WeightPrecision.Float16));

    [Theory]
    [InlineData(0x3F800000u, 0x3F80)] // 1
    [InlineData(0x3EAAAAABu, 0x3EAB)] // 1/3: the low half 0xAAAB is above the midpoint
    [InlineData(0x3F808000u, 0x3F80)] // a tie, rounds to the even 0x3F80
    [InlineData(0x3F818000u, 0x3F82)] // a tie, rounds to the even 0x3F82
    [InlineData(0x7F7FFFFFu, 0x7F80)] // float.MaxValue rounds up to infinity
    [InlineData(0xFF800000u, 0xFF80)] // -infinity
    [InlineData(0x00000001u, 0x0000)] // the smallest subnormal rounds to zero
    public void Bf16_narrowing_rounds_to_nearest_even(uint bits, int expected)
        => Assert.Equal((ushort)expected, WeightConversion.Narrow(BitConverter.UInt32BitsToSingle(bits), WeightPrecision.BFloat16));

    [Fact]
    public void Bf16_narrowing_keeps_nan_a_nan()
    {
        ushort bits = WeightConversion.Narrow(BitConverter.UInt32BitsToSingle(0x7F800001u), WeightPrecision.BFloat16);
        Assert.True(float.IsNaN(WeightConversion.WidenReference(bits, WeightPrecision.BFloat16)));
    }

    /// <summary>
    /// The vector narrowing equals the scalar one bit for bit: around every fp16 value (the value, its neighbours one
    /// float ulp away, and the ties halfway to the next), at both ends of the subnormal, normal and overflow ranges, for
    /// NaNs with payloads, and over random bit patterns; every length from 0 to 70 for the tails.
    /// </summary>
    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Vector_narrowing_equals_the_scalar_narrowing_bit_for_bit(WeightPrecision precision)
    {
        var values = new List<uint>();
        for (int h = 0; h < 0x10000; h++)
        {
            uint f = BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf((ushort)h));
            values.AddRange([f, f + 1, f - 1, f + 0x1000, f + 0xFFF, f + 0x1001, f + 0x8000, f + 0x7FFF]);
        }
        values.AddRange([0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x7FBFFFFFu, 0x477FEFFFu, 0x477FF000u,
                         0x47800000u, 0x387FFFFFu, 0x38800000u, 0x33000000u, 0x33000001u, 0x32FFFFFFu, 0x00000001u, 0x80000000u]);
        var random = new Random(5);
        for (int i = 0; i < 200_000; i++) values.Add((uint)random.NextInt64(0, 1L << 32));
        var source = values.Select(BitConverter.UInt32BitsToSingle).ToArray();
        var vector = new ushort[source.Length];
        fixed (float* src = source)
        fixed (ushort* dst = vector)
        {
            WeightConversion.Narrow(src, source.Length, precision, dst);
            for (int i = 0; i < source.Length; i++)
                if (vector[i] != WeightConversion.Narrow(source[i], precision))
                    Assert.Fail($"0x{values[i]:X8}: vector 0x{vector[i]:X4}, scalar 0x{WeightConversion.Narrow(source[i], precision):X4}");
            for (int length = 0; length <= 70; length++)
            {
                var tail = new ushort[length + 1];
                tail[length] = 0xABCD;                                // a canary past the end
                fixed (ushort* t = tail) WeightConversion.Narrow(src + 3, length, precision, t);
                for (int i = 0; i < length; i++) Assert.Equal(WeightConversion.Narrow(source[3 + i], precision), tail[i]);
                Assert.Equal(0xABCD, tail[length]);
            }
        }
    }

    [Fact]
    public void Widening_reference_gives_the_known_values()
    {
        Assert.Equal(1f, WeightConversion.WidenReference(0x3C00, WeightPrecision.Float16));
        Assert.Equal(MathF.Pow(2, -24), WeightConversion.WidenReference(0x0001, WeightPrecision.Float16));
        Assert.Equal(65504f, WeightConversion.WidenReference(0x7BFF, WeightPrecision.Float16));
        Assert.Equal(float.NegativeInfinity, WeightConversion.WidenReference(0xFC00, WeightPrecision.Float16));
        Assert.Equal(0x80000000u, BitConverter.SingleToUInt32Bits(WeightConversion.WidenReference(0x8000, WeightPrecision.Float16)));
        Assert.Equal(1f / 3f, WeightConversion.WidenReference(0x3EAB, WeightPrecision.BFloat16), 1e-2f);
        Assert.Equal(0x3EAB0000u, BitConverter.SingleToUInt32Bits(WeightConversion.WidenReference(0x3EAB, WeightPrecision.BFloat16)));
    }

    [Theory]
    [MemberData(nameof(IsaPrecisionData))]
    public void Vector_widening_equals_the_reference_for_every_bit_pattern(KernelIsa isa, WeightPrecision precision)
    {
        const int count = 65536 + 13; // every pattern, then a tail that is not a multiple of any vector width
        var source = new ushort[count];
        for (int i = 0; i < count; i++) source[i] = (ushort)(i * 40503);
        using var actual = new GuardedBuffer(count);
        fixed (ushort* s = source) WeightConversion.Widen(s, count, precision, actual.Pointer, isa);
        var result = actual.Span;
        for (int i = 0; i < count; i++)
        {
            float expected = WeightConversion.WidenReference(source[i], precision);
            if (float.IsNaN(expected))
            {
                Assert.True(float.IsNaN(result[i]), $"{precision} 0x{source[i]:X4} on {isa}: expected NaN, got {result[i]}");
                continue;
            }
            if (BitConverter.SingleToUInt32Bits(expected) != BitConverter.SingleToUInt32Bits(result[i]))
                Assert.Fail($"{precision} 0x{source[i]:X4} on {isa}: expected {expected:R}, got {result[i]:R}");
        }
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Packing_rounds_each_weight_once_and_pads_panels(WeightPrecision precision)
    {
        const int n = 45, k = 7;
        var w = Uniform(n * k, 12);
        using var packed = new PackedMatrix(w, n, k, precision);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            Assert.Equal(WeightConversion.WidenReference(WeightConversion.Narrow(w[i * k + j], precision), precision), packed[i, j]);
        Assert.Equal(precision, packed.Precision);
        Assert.Equal(2L * PackedMatrix.PanelWidth * k * sizeof(ushort), packed.ByteSize);
        var padding = new ReadOnlySpan<ushort>((ushort*)packed.Storage + PackedMatrix.PanelWidth * k, PackedMatrix.PanelWidth * k);
        for (int row = 0; row < k; row++)
            Assert.All(padding.Slice(row * PackedMatrix.PanelWidth + n - PackedMatrix.PanelWidth, 2 * PackedMatrix.PanelWidth - n).ToArray(),
                bits => Assert.Equal(0, bits));
        Assert.Throws<InvalidOperationException>(() => (nint)packed.Data);
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Representable_weights_pack_losslessly(WeightPrecision precision)
    {
        const int n = 40, k = 33;
        var w = Representable(Uniform(n * k, 21), precision);
        using var packed = new PackedMatrix(w, n, k, precision);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            Assert.Equal(w[i * k + j], packed[i, j]);
    }

    [Theory]
    [MemberData(nameof(IsaPrecisionData))]
    public void Linear_with_16_bit_weights_matches_reference_over_shape_sweep(KernelIsa isa, WeightPrecision precision)
    {
        int[] ms = [1, 2, 11, 12, 13, 33, 97, 200];
        int[] ns = [1, 15, 16, 17, 31, 32, 33, 65, 600];
        int[] ks = [1, 17, 513, 1030, 7, 100];
        int combo = 0;
        foreach (int m in ms)
        foreach (int n in ns)
        {
            int k = ks[combo++ % ks.Length];
            if ((long)m * n * k > 2_000_000) k = 64;
            int lda = k + combo % 3, ldc = n + combo % 5;
            using var a = GuardedUniform((m - 1) * lda + k, combo);
            using var bias = GuardedUniform(n, combo + 1);
            using var w = new PackedMatrix(Uniform(n * k, combo + 2), n, k, precision);
            using var c = new GuardedBuffer((m - 1) * ldc + n, float.NaN);
            var expected = new float[(m - 1) * ldc + n];
            fixed (float* pe = expected)
            {
                GemmKernel.LinearReference(a.Pointer, lda, m, w, bias.Pointer, pe, ldc, null, 0);
                GemmKernel.Linear(a.Pointer, lda, m, w, bias.Pointer, c.Pointer, ldc, null, 0, isa);
            }
            for (int row = 0; row < m; row++)
                Tolerance.AssertClose(expected.AsSpan(row * ldc, n), c.Span.Slice(row * ldc, n), 1e-6 * Math.Max(16, k), 1e-5,
                    $"{precision} linear {m}x{n}x{k} row {row}, {isa}");
        }
    }

    [Theory]
    [MemberData(nameof(IsaPrecisionData))]
    public void Linear_with_16_bit_storage_of_representable_weights_equals_fp32_bitwise(KernelIsa isa, WeightPrecision precision)
    {
        foreach (var (m, n, k) in new[] { (61, 77, 1100), (1, 33, 17), (200, 320, 320), (77, 40, 768) })
        {
            var weights = Representable(Uniform(n * k, m + n + k), precision);
            using var a = GuardedUniform(m * k, 9);
            using var bias = GuardedUniform(n, 10);
            using var residual = GuardedUniform(m * n, 11);
            using var full = new PackedMatrix(weights, n, k);
            using var half = new PackedMatrix(weights, n, k, precision);
            using var expected = new GuardedBuffer(m * n);
            using var actual = new GuardedBuffer(m * n);
            GemmKernel.Linear(a.Pointer, k, m, full, bias.Pointer, expected.Pointer, n, residual.Pointer, n, isa);
            GemmKernel.Linear(a.Pointer, k, m, half, bias.Pointer, actual.Pointer, n, residual.Pointer, n, isa);
            AssertBitwiseEqual(expected.Span, actual.Span, $"{precision} vs fp32 linear {m}x{n}x{k}, {isa}");
        }
    }

    [Theory]
    [MemberData(nameof(IsaPrecisionData))]
    public void Convolution_with_16_bit_filters_equals_fp32_on_representable_filters_and_matches_reference(KernelIsa isa, WeightPrecision precision)
    {
        foreach (var g in new[]
        {
            new Conv2dGeometry(2, 9, 11, 40, 33, 3, 3, 1, 1, 1, 1, 1, 1),
            new Conv2dGeometry(1, 16, 16, 64, 70, 3, 3, 2, 2, 0, 0, 1, 1),
            new Conv2dGeometry(1, 8, 8, 48, 17, 1, 1, 1, 1, 0, 0, 0, 0),
        })
        {
            int filterLength = g.OutChannels * g.InChannels * g.KernelHeight * g.KernelWidth;
            var filters = Representable(Uniform(filterLength, g.OutChannels), precision);
            using var x = GuardedUniform(checked((int)((long)g.Batch * g.InHeight * g.InWidth * g.InChannels)), 3);
            using var bias = GuardedUniform(g.OutChannels, 4);
            using var full = new ConvolutionWeights(filters, g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth);
            using var half = new ConvolutionWeights(filters, g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth, precision);
            int outputs = checked((int)g.OutputPixels * g.OutChannels);
            using var expected = new GuardedBuffer(outputs);
            using var actual = new GuardedBuffer(outputs);
            Conv2dKernel.Forward(x.Pointer, g, full, bias.Pointer, expected.Pointer, null, isa);
            Conv2dKernel.Forward(x.Pointer, g, half, bias.Pointer, actual.Pointer, null, isa);
            AssertBitwiseEqual(expected.Span, actual.Span, $"{precision} vs fp32 conv {g.OutChannels}x{g.KernelHeight}x{g.KernelWidth}, {isa}");

            var reference = new float[outputs];
            fixed (float* pr = reference) Conv2dKernel.ForwardReference(x.Pointer, g, half, bias.Pointer, pr, null);
            Tolerance.AssertClose(reference, actual.Span, 1e-6 * Math.Max(16, g.PatchSize), 1e-5, $"{precision} conv vs reference, {isa}");
        }
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Winograd_filters_transformed_from_16_bit_storage_equal_those_from_fp32_storage(WeightPrecision precision)
    {
        var g = new Conv2dGeometry(1, 12, 12, 40, 33, 3, 3, 1, 1, 1, 1, 1, 1);
        var filters = Representable(Uniform(33 * 40 * 9, 7), precision);
        using var full = new ConvolutionWeights(filters, 33, 40, 3, 3);
        using var half = new ConvolutionWeights(filters, 33, 40, 3, 3, precision);
        using var fromFull = new WinogradWeights(full);
        using var fromHalf = new WinogradWeights(half);
        using var x = GuardedUniform(12 * 12 * 40, 8);
        using var bias = GuardedUniform(33, 9);
        using var expected = new GuardedBuffer(12 * 12 * 33);
        using var actual = new GuardedBuffer(12 * 12 * 33);
        Conv2dKernel.ForwardWinograd(x.Pointer, g, fromFull, bias.Pointer, expected.Pointer);
        Conv2dKernel.ForwardWinograd(x.Pointer, g, fromHalf, bias.Pointer, actual.Pointer);
        AssertBitwiseEqual(expected.Span, actual.Span, $"Winograd from {precision} vs fp32 filters");
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Linear_with_16_bit_weights_is_bitwise_deterministic_across_thread_counts(WeightPrecision precision)
    {
        const int m = 301, n = 97, k = 1100;
        var a = Uniform(m * k, 1);
        var bias = Uniform(n, 3);
        using var w = new PackedMatrix(Uniform(n * k, 2), n, k, precision);
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var scheduler = new ThreadScheduler(threads);
            using var scope = scheduler.Use();
            var output = new float[m * n];
            fixed (float* pa = a, pb = bias, py = output) GemmKernel.Linear(pa, k, m, w, pb, py, n);
            if (first == null) first = output;
            else AssertBitwiseEqual(first, output, $"{precision} linear on {threads} threads vs 1");
        }
    }

    /// <summary>The values rounded through <paramref name="precision"/>: fp32 numbers that 16-bit storage keeps exactly.</summary>
    private static float[] Representable(float[] values, WeightPrecision precision)
        => Array.ConvertAll(values, v => WeightConversion.WidenReference(WeightConversion.Narrow(v, precision), precision));
}
