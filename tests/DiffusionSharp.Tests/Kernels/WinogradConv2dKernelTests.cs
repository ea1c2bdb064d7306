using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Tests.Support;
using DiffusionSharp.Threading;
using Xunit.Abstractions;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>
/// Winograd F(4x4, 3x3) on every supported path against its double-precision twin (same transformed filters) and
/// against the direct convolution reference (the spec); the vectorized filter transform against its double twin; the
/// per-call path against pre-transformed filters; determinism, NaN/infinity guarantees, rejection of bad input.
/// </summary>
public unsafe class WinogradConv2dKernelTests(ITestOutputHelper output)
{
    public static TheoryData<int, int, int, int, int, int, int> Geometries => new()
    {
        // batch, h, w, cin, cout, pad (top/left), pad (bottom/right)
        { 1, 1, 1, 1, 1, 1, 1 },
        { 1, 1, 7, 3, 5, 1, 1 },
        { 1, 6, 1, 2, 17, 1, 1 },
        { 1, 4, 4, 1, 1, 1, 1 },
        { 1, 5, 5, 3, 4, 1, 1 },
        { 2, 8, 7, 16, 17, 1, 1 },
        { 1, 9, 11, 4, 33, 1, 1 },
        { 1, 6, 5, 17, 31, 1, 1 },
        { 2, 7, 9, 64, 47, 1, 1 },
        { 1, 10, 13, 7, 9, 0, 0 },
        { 1, 9, 7, 11, 12, 0, 1 },
        { 1, 5, 6, 129, 49, 1, 1 },
        { 2, 13, 14, 13, 15, 1, 1 },
        { 1, 3, 5, 600, 65, 1, 1 },
        { 1, 12, 12, 1, 2, 1, 1 },
        { 2, 11, 3, 8, 1, 1, 1 },
    };

    private static (GuardedBuffer X, GuardedBuffer Bias, GuardedBuffer Residual, ConvolutionWeights W) Operands(Conv2dGeometry g, int outN)
        => (GuardedUniform(g.Batch * g.InHeight * g.InWidth * g.InChannels, 5), GuardedUniform(g.OutChannels, 7),
            GuardedUniform(outN, 8), new ConvolutionWeights(Uniform(g.OutChannels * g.InChannels * 9, 6), g.OutChannels, g.InChannels, 3, 3));

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Winograd_matches_its_double_twin_and_the_direct_reference_on_every_path(int b, int h, int w, int cin, int cout, int padBefore, int padAfter)
    {
        var g = new Conv2dGeometry(b, h, w, cin, cout, 3, 3, 1, 1, padBefore, padBefore, padAfter, padAfter);
        int outN = checked((int)g.OutputPixels * cout);
        var (x, bias, residual, weights) = Operands(g, outN);
        using (x) using (bias) using (residual) using (weights)
        using (var u = new WinogradWeights(weights))
        {
            var twin = new float[outN];
            var direct = new float[outN];
            fixed (float* pt = twin, pd = direct)
            {
                Conv2dKernel.ForwardWinogradReference(x.Pointer, g, u, bias.Pointer, pt, residual.Pointer);
                Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pd, residual.Pointer);
            }
            // The twin differs from the direct sum only by the float rounding of the transformed filters.
            Tolerance.AssertClose(direct, twin, 1e-6 * Math.Max(16, 9 * cin), 1e-5, $"double Winograd vs direct {g}");
            foreach (var isa in SupportedIsas)
            {
                using var y = new GuardedBuffer(outN, float.NaN);
                Conv2dKernel.ForwardWinograd(x.Pointer, g, u, bias.Pointer, y.Pointer, residual.Pointer, isa);
                Tolerance.AssertClose(twin, y.ToArray(), 4e-6 * Math.Max(16, 9 * cin), 1e-5, $"Winograd vs twin {g}, {isa}");
                Tolerance.AssertClose(direct, y.ToArray(), 4e-6 * Math.Max(16, 9 * cin), 1e-5, $"Winograd vs direct {g}, {isa}");
            }
        }
    }

    /// <summary>Every input and output channel count 1..17 and 33 (vector and panel tails), on a 7x6 image (tile tails).</summary>
    [Fact]
    public void Winograd_matches_the_direct_reference_over_channel_tails()
    {
        foreach (int cin in TailSizes.Where(n => n <= 33).Concat([4, 6, 10, 14]))
        {
            int cout = cin % 17 + 1 + (cin == 33 ? 32 : 0);
            foreach (var (ci, co) in new[] { (cin, cout), (cout, cin) })
            {
                var g = Conv2dGeometry.Same(1, 7, 6, ci, co, 3);
                int outN = (int)g.OutputPixels * co;
                var (x, bias, residual, weights) = Operands(g, outN);
                using (x) using (bias) using (residual) using (weights)
                using (var u = new WinogradWeights(weights))
                {
                    var direct = new float[outN];
                    fixed (float* pd = direct) Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pd, residual.Pointer);
                    foreach (var isa in SupportedIsas)
                    {
                        using var y = new GuardedBuffer(outN, float.NaN);
                        Conv2dKernel.ForwardWinograd(x.Pointer, g, u, bias.Pointer, y.Pointer, residual.Pointer, isa);
                        Tolerance.AssertClose(direct, y.ToArray(), 4e-6 * Math.Max(16, 9 * ci), 1e-5, $"Winograd {ci}->{co}, {isa}");
                    }
                }
            }
        }
    }

    /// <summary>
    /// The vectorized filter transform against its double twin over every Cout 1..17 and 33 (vector and panel tails) with
    /// small Cin, and SD sizes, from fp32 and 16-bit storage: within a few fp32 roundings of the twin, zero in the lanes
    /// past Cout, nothing written past the end (guard page), the same on 1 and 3 threads.
    /// </summary>
    [Fact]
    public void Filter_transform_matches_its_double_twin_over_channel_tails_and_sd_sizes()
    {
        var shapes = TailSizes.Where(n => n <= 33).Select(n => (Cout: n, Cin: n % 5 + 1)).Concat([(320, 320), (512, 512), (4, 640)]);
        double worst = 0;
        foreach (var precision in new[] { WeightPrecision.Float32, WeightPrecision.Float16, WeightPrecision.BFloat16 })
        foreach (var (cout, cin) in shapes)
        {
            if (precision != WeightPrecision.Float32 && cout * cin > 4096) continue;
            using var weights = new ConvolutionWeights(Uniform(cout * cin * 9, 60 + cout), cout, cin, 3, 3, precision);
            using var twin = WinogradWeights.Reference(weights);
            int floats = checked((int)(WinogradWeights.ByteSizeOf(cout, cin) / sizeof(float)));
            float[]? first = null;
            foreach (int threads in new[] { 1, 3 })
            {
                using var scheduler = new ThreadScheduler(threads);
                using var scope = scheduler.Use();
                using var fast = new GuardedBuffer(floats, float.NaN);
                WinogradWeights.Transform(weights, fast.Pointer);
                var actual = fast.ToArray();
                if (first != null)
                {
                    AssertBitwiseEqual(first, actual, $"filter transform {cout}x{cin} {precision} on 3 threads vs 1");
                    continue;
                }
                first = actual;
                var expected = new ReadOnlySpan<float>(twin.Data, floats);
                Tolerance.AssertClose(expected, actual, 2e-6, 1e-6, $"filter transform {cout}x{cin} {precision} vs double twin");
                for (int i = 0; i < floats; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]));
                for (int xi = 0; xi < 36; xi++)
                for (int o = cout; o < twin.PanelCount * 32; o++)
                for (int ci = 0; ci < cin; ci++)
                    Assert.Equal(0f, actual[xi * twin.MatrixLength + ((long)(o / 32) * cin + ci) * 32 + o % 32]);
            }
        }
        output.WriteLine($"filter transform: max |fast - double twin| {worst:G3} (weights in [-1, 1))");
    }

    /// <summary>
    /// The per-call path (filters transformed into the shared scratch at each call) gives bitwise the result of the same
    /// kernel over filters transformed in advance, for layers run big, small, big again and 16-bit in a row (the scratch
    /// is reused at different sizes), and matches the direct reference.
    /// </summary>
    [Fact]
    public void Winograd_over_layer_filters_transforms_per_call_into_a_reused_scratch()
    {
        var layers = new (int Cin, int Cout, WeightPrecision Precision)[] { (40, 70, WeightPrecision.Float32), (3, 5, WeightPrecision.Float32), (33, 64, WeightPrecision.Float32), (17, 9, WeightPrecision.Float16) };
        for (int l = 0; l < layers.Length; l++)
        {
            var (cin, cout, precision) = layers[l];
            var g = Conv2dGeometry.Same(1, 9, 11, cin, cout, 3);
            int outN = (int)g.OutputPixels * cout;
            using var x = GuardedUniform(g.InHeight * g.InWidth * cin, 70 + l);
            using var bias = GuardedUniform(cout, 80 + l);
            using var residual = GuardedUniform(outN, 90 + l);
            using var weights = new ConvolutionWeights(Uniform(cout * cin * 9, 100 + l), cout, cin, 3, 3, precision);
            using var u = new WinogradWeights(weights);
            var direct = new float[outN];
            fixed (float* pd = direct) Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pd, residual.Pointer);
            foreach (var isa in SupportedIsas)
            {
                using var expected = new GuardedBuffer(outN, float.NaN);
                using var y = new GuardedBuffer(outN, float.NaN);
                Conv2dKernel.ForwardWinograd(x.Pointer, g, u, bias.Pointer, expected.Pointer, residual.Pointer, isa);
                Conv2dKernel.ForwardWinograd(x.Pointer, g, weights, bias.Pointer, y.Pointer, residual.Pointer, null, isa);
                AssertBitwiseEqual(expected.ToArray(), y.ToArray(), $"per-call Winograd {cin}->{cout} {precision}, {isa}");
                Tolerance.AssertClose(direct, y.ToArray(), 4e-6 * Math.Max(16, 9 * cin), 1e-5, $"per-call Winograd {cin}->{cout} {precision} vs direct, {isa}");
            }
        }
    }

    /// <summary>Filters transformed inside the tasks (per panel block and K block) or all at once before them give the
    /// pre-transformed result bit for bit: several K blocks, a partial last panel, batch 2, 16-bit storage, 1-3 threads.</summary>
    [Theory]
    [InlineData(600, 70, WeightPrecision.Float32)]
    [InlineData(1030, 33, WeightPrecision.Float16)]
    [InlineData(40, 130, WeightPrecision.BFloat16)]
    public void Filters_transformed_in_the_tasks_or_at_once_give_the_same_result(int cin, int cout, WeightPrecision precision)
    {
        var g = Conv2dGeometry.Same(2, 13, 10, cin, cout, 3);
        int outN = (int)g.OutputPixels * cout;
        using var x = GuardedUniform(2 * g.InHeight * g.InWidth * cin, 11);
        using var bias = GuardedUniform(cout, 12);
        using var residual = GuardedUniform(outN, 13);
        using var weights = new ConvolutionWeights(Uniform(cout * cin * 9, 14), cout, cin, 3, 3, precision);
        using var u = new WinogradWeights(weights);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var scheduler = new ThreadScheduler(threads);
            using var scope = scheduler.Use();
            using var expected = new GuardedBuffer(outN, float.NaN);
            Conv2dKernel.ForwardWinograd(x.Pointer, g, u, bias.Pointer, expected.Pointer, residual.Pointer, KernelSettings.BestIsa);
            foreach (bool inTasks in new[] { true, false })
            {
                using var y = new GuardedBuffer(outN, float.NaN);
                Conv2dKernel.ForwardWinograd(x.Pointer, g, weights, bias.Pointer, y.Pointer, residual.Pointer, null, KernelSettings.BestIsa, inTasks);
                AssertBitwiseEqual(expected.ToArray(), y.ToArray(), $"{cin}->{cout} {precision}, {threads} threads, transformed {(inTasks ? "in the tasks" : "at once")}");
            }
        }
    }

    [Fact]
    public void Winograd_residual_may_alias_the_output()
    {
        var g = Conv2dGeometry.Same(1, 9, 10, 12, 20, 3);
        int outN = (int)g.OutputPixels * 20;
        var (x, bias, residual, weights) = Operands(g, outN);
        using (x) using (bias) using (residual) using (weights)
        using (var u = new WinogradWeights(weights))
        {
            var expected = new float[outN];
            fixed (float* pe = expected) Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pe, residual.Pointer);
            Conv2dKernel.ForwardWinograd(x.Pointer, g, u, bias.Pointer, residual.Pointer, residual.Pointer);
            Tolerance.AssertClose(expected, residual.ToArray(), 1e-4, 1e-5, "Winograd with residual = y");
        }
    }

    /// <summary>
    /// SD-sized layers (VAE decoder 64x64 512 -> 512 at batch 1, UNet 32x32 640 -> 640 at batch 2) against the implicit
    /// GEMM (itself tested against the reference), weights scaled like a trained layer (1/sqrt(9 Cin)): every element
    /// within 2e-4 of the output's RMS (measured: max 0.66-1.05e-4, RMS of the error 3.7-5.1e-6 of it).
    /// </summary>
    [Theory]
    [InlineData(1, 64, 64, 512, 512)]
    [InlineData(2, 32, 32, 640, 640)]
    [InlineData(1, 48, 40, 320, 320)]
    public void Winograd_error_at_sd_sizes_is_within_two_ten_thousandths_of_the_output_scale(int b, int h, int w, int cin, int cout)
    {
        var g = Conv2dGeometry.Same(b, h, w, cin, cout, 3);
        int outN = checked((int)g.OutputPixels * cout);
        var xv = Uniform(b * h * w * cin, 31);
        var bias = Uniform(cout, 33, 0.1f);
        using var weights = new ConvolutionWeights(Uniform(cout * cin * 9, 32, (float)(1 / Math.Sqrt(9.0 * cin))), cout, cin, 3, 3);
        using var u = new WinogradWeights(weights);
        var gemm = new float[outN];
        var wino = new float[outN];
        fixed (float* px = xv, pb = bias, pg = gemm, pw = wino)
        {
            Conv2dKernel.Forward(px, g, weights, pb, pg, null, KernelSettings.BestIsa);
            Conv2dKernel.ForwardWinograd(px, g, u, pb, pw, null, KernelSettings.BestIsa);
        }
        double sumSquares = 0, errorSquares = 0, worst = 0;
        for (int i = 0; i < outN; i++)
        {
            double diff = (double)wino[i] - gemm[i];
            sumSquares += (double)gemm[i] * gemm[i];
            errorSquares += diff * diff;
            worst = Math.Max(worst, Math.Abs(diff));
        }
        double rms = Math.Sqrt(sumSquares / outN), rmsError = Math.Sqrt(errorSquares / outN);
        string what = $"Winograd vs implicit GEMM {b}x{h}x{w}x{cin}->{cout}: max |diff| {worst / rms:G3}, RMS diff {rmsError / rms:G3} of the output RMS {rms:G3}";
        output.WriteLine(what);
        Tolerance.AssertClose(gemm, wino, 2e-4 * rms, 0, what);
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Filters_stored_in_16_bits_transform_as_their_widened_fp32_values(WeightPrecision precision)
    {
        const int cout = 37, cin = 5;
        var raw = Uniform(cout * cin * 9, 40);
        var rounded = raw.Select(v => WeightConversion.WidenReference(WeightConversion.Narrow(v, precision), precision)).ToArray();
        using var narrow = new ConvolutionWeights(raw, cout, cin, 3, 3, precision);
        using var wide = new ConvolutionWeights(rounded, cout, cin, 3, 3);
        using var fromNarrow = new WinogradWeights(narrow);
        using var fromWide = new WinogradWeights(wide);
        for (int xi = 0; xi < 36; xi++)
        for (int o = 0; o < cout; o++)
        for (int ci = 0; ci < cin; ci++)
            Assert.Equal(fromWide[xi, o, ci], fromNarrow[xi, o, ci]);
    }

    [Fact]
    public void Winograd_is_bitwise_deterministic_on_any_thread_count()
    {
        var g = new Conv2dGeometry(2, 23, 19, 40, 70, 3, 3, 1, 1, 1, 1, 1, 1);
        int outN = (int)g.OutputPixels * 70;
        var (x, bias, residual, weights) = Operands(g, outN);
        using (x) using (bias) using (residual) using (weights)
        using (var u = new WinogradWeights(weights))
        {
            float[]? first = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var scheduler = new ThreadScheduler(threads);
                using var scope = scheduler.Use();
                var y = new float[outN];
                fixed (float* py = y) Conv2dKernel.ForwardWinograd(x.Pointer, g, u, bias.Pointer, py, residual.Pointer);
                if (first == null) first = y;
                else AssertBitwiseEqual(first, y, $"Winograd on {threads} threads vs 1");
            }
        }
    }

    /// <summary>
    /// What Winograd guarantees for non-finite activations: every output the direct convolution makes non-finite is
    /// non-finite (NaN where the reference has ±inf is allowed: inf - inf inside the transform), and every 4x4 output
    /// tile whose 6x6 input window is finite matches the reference. A non-finite input does spread to the other outputs
    /// of the tiles whose window holds it (the transform mixes the whole window), so exact positions are not kept.
    /// </summary>
    [Fact]
    public void Winograd_keeps_non_finite_outputs_non_finite_and_clean_tiles_exact()
    {
        var g = Conv2dGeometry.Same(1, 17, 14, 20, 24, 3);
        var xv = Uniform(17 * 14 * 20, 25);
        PlantSpecials(xv, 27, 6);
        using var x = GuardedBuffer.From(xv);
        using var weights = new ConvolutionWeights(Uniform(24 * 20 * 9, 26), 24, 20, 3, 3);
        using var u = new WinogradWeights(weights);
        int outN = (int)g.OutputPixels * 24;
        var expected = new float[outN];
        fixed (float* pe = expected) Conv2dKernel.ForwardReference(x.Pointer, g, weights, null, pe, null);
        foreach (var isa in SupportedIsas)
        {
            using var y = new GuardedBuffer(outN);
            Conv2dKernel.ForwardWinograd(x.Pointer, g, u, null, y.Pointer, null, isa);
            int clean = 0;
            for (int oy = 0; oy < 17; oy++)
            for (int ox = 0; ox < 14; ox++)
            {
                bool windowFinite = true;
                int ty = oy / 4 * 4 - 1, tx = ox / 4 * 4 - 1;
                for (int iy = Math.Max(0, ty); iy < Math.Min(17, ty + 6); iy++)
                for (int ix = Math.Max(0, tx); ix < Math.Min(14, tx + 6); ix++)
                for (int c = 0; c < 20; c++)
                    windowFinite &= float.IsFinite(xv[(iy * 14 + ix) * 20 + c]);
                for (int o = 0; o < 24; o++)
                {
                    int at = (oy * 14 + ox) * 24 + o;
                    if (!float.IsFinite(expected[at]))
                        Assert.False(float.IsFinite(y.Span[at]), $"{isa}: output ({oy}, {ox}, {o}) should be non-finite, got {y.Span[at]}");
                    if (windowFinite)
                    {
                        Tolerance.AssertClose(expected.AsSpan(at, 1), y.Span.Slice(at, 1), 2e-4, 1e-5, $"{isa}: clean tile output ({oy}, {ox}, {o})");
                        clean++;
                    }
                }
            }
            Assert.InRange(clean, outN / 4, outN - 1); // the planted values leave clean tiles and dirty ones
        }
    }

    [Fact]
    public void Bad_geometry_and_mismatched_filters_are_rejected()
    {
        using var weights = new ConvolutionWeights(new float[4 * 3 * 9], 4, 3, 3, 3);
        using var u = new WinogradWeights(weights);
        var buffer = new float[4096];
        fixed (float* p = buffer)
        {
            float* q = p;
            var stride = Assert.Throws<ArgumentException>(() => Conv2dKernel.ForwardWinograd(q, new Conv2dGeometry(1, 8, 8, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1), u, null, q));
            Assert.Contains("stride-1", stride.Message);
            var channels = Assert.Throws<ArgumentException>(() => Conv2dKernel.ForwardWinograd(q, Conv2dGeometry.Same(1, 4, 4, 5, 4, 3), u, null, q));
            Assert.Contains("do not match", channels.Message);
        }
        using var oneByOne = new ConvolutionWeights(new float[12], 4, 3, 1, 1);
        Assert.Throws<ArgumentException>(() => new WinogradWeights(oneByOne));
        fixed (float* p = buffer)
        {
            float* q = p;
            Assert.Throws<ArgumentException>(() => Conv2dKernel.ForwardWinograd(q, Conv2dGeometry.Same(1, 4, 4, 3, 4, 1), oneByOne, null, q));
            var channels = Assert.Throws<ArgumentException>(() => Conv2dKernel.ForwardWinograd(q, Conv2dGeometry.Same(1, 4, 4, 5, 4, 3), weights, null, q));
            Assert.Contains("do not match", channels.Message);
        }
    }

    [Fact]
    public void Transformed_filters_are_g_times_filter_times_g_transposed()
    {
        var wv = Uniform(33 * 5 * 9, 40);
        using var weights = new ConvolutionWeights(wv, 33, 5, 3, 3);
        using var u = WinogradWeights.Reference(weights);
        using var fast = new WinogradWeights(weights);
        // G for points 0, ±1, ±2, inf, written out independently of the library's table.
        double[,] gm = { { 0.25, 0, 0 }, { -1 / 6.0, -1 / 6.0, -1 / 6.0 }, { -1 / 6.0, 1 / 6.0, -1 / 6.0 }, { 1 / 24.0, 1 / 12.0, 1 / 6.0 }, { 1 / 24.0, -1 / 12.0, 1 / 6.0 }, { 0, 0, 1 } };
        foreach (var (o, ci) in new[] { (0, 0), (32, 4), (17, 2) })
        {
            var expected = new float[36];
            var actual = new float[36];
            for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
            {
                double s = 0;
                for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    s += gm[i, ky] * wv[((o * 5 + ci) * 3 + ky) * 3 + kx] * gm[j, kx];
                expected[i * 6 + j] = (float)s;
                actual[i * 6 + j] = u[i * 6 + j, o, ci];
            }
            Tolerance.AssertClose(expected, actual, 1e-7, 1e-6, $"U[·, {o}, {ci}]");
            for (int xi = 0; xi < 36; xi++) actual[xi] = fast[xi, o, ci];
            Tolerance.AssertClose(expected, actual, 2e-6, 1e-6, $"fast U[·, {o}, {ci}]");
        }
        Assert.Equal(36L * 2 * 32 * 5 * sizeof(float), u.ByteSize);
    }
}
