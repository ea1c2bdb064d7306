using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>
/// The fusions of "Speed Is All You Need" against their unfused twins (the separate kernels a naive engine runs) and
/// against the double-precision references: the per-image bias of the GEMM/convolution epilogue (the time embedding
/// folded into conv1), the epilogue's separate passes, GroupNorm then SiLU, the strided activation and multiply
/// passes of the unfused GEGLU, and the partially fused and fully materialised attention.
/// </summary>
public unsafe class UnfusedTwinTests
{
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 13, 17, 33)]
    [InlineData(3, 7, 40, 1030)]
    [InlineData(2, 50, 65, 100)]
    [InlineData(4, 1, 600, 7)]
    public void Linear_with_image_bias_matches_reference_on_every_path(int images, int rowsPerImage, int n, int k)
    {
        int m = images * rowsPerImage;
        using var a = GuardedUniform(m * k, 1);
        using var bias = GuardedUniform(n, 2);
        using var imageBias = GuardedUniform(images * n, 3);
        using var residual = GuardedUniform(m * n, 4);
        using var w = new PackedMatrix(Uniform(n * k, 5), n, k);
        var expected = new float[m * n];
        fixed (float* pe = expected)
            GemmKernel.LinearReference(a.Pointer, k, m, w, bias.Pointer, pe, n, residual.Pointer, n, imageBias.Pointer, rowsPerImage);
        foreach (var isa in SupportedIsas)
        {
            using var c = new GuardedBuffer(m * n, float.NaN);
            GemmKernel.Linear(a.Pointer, k, m, w, bias.Pointer, c.Pointer, n, residual.Pointer, n, imageBias.Pointer, rowsPerImage, isa);
            Tolerance.AssertClose(expected, c.ToArray(), 1e-6 * Math.Max(16, k), 1e-5, $"linear {images}x{rowsPerImage}x{n}x{k} with image bias, {isa}");
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 1, 1, 3)]
    [InlineData(2, 5, 7, 3, 33, 3)]
    [InlineData(3, 6, 5, 16, 17, 3)]
    [InlineData(2, 4, 4, 8, 40, 1)]
    [InlineData(2, 9, 11, 20, 48, 3)]
    public void Conv2d_with_image_bias_matches_reference_and_the_unfused_passes(int b, int h, int w, int cin, int cout, int kernel)
    {
        var g = Conv2dGeometry.Same(b, h, w, cin, cout, kernel);
        int outN = checked((int)g.OutputPixels * cout);
        using var x = GuardedUniform(b * h * w * cin, 5);
        using var bias = GuardedUniform(cout, 7);
        using var imageBias = GuardedUniform(b * cout, 8);
        using var weights = new ConvolutionWeights(Uniform(cout * cin * kernel * kernel, 6), cout, cin, kernel, kernel);
        var expected = new float[outN];
        fixed (float* pe = expected) Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pe, null, imageBias.Pointer);
        double atol = 1e-6 * Math.Max(16, g.PatchSize);
        foreach (var isa in SupportedIsas)
        {
            using var y = new GuardedBuffer(outN, float.NaN);
            Conv2dKernel.Forward(x.Pointer, g, weights, bias.Pointer, y.Pointer, null, imageBias.Pointer, isa);
            Tolerance.AssertClose(expected, y.ToArray(), atol, 1e-5, $"conv {g} with image bias, {isa}");
        }
        // The unfused twin: the bare convolution, then a bias pass and a per-image bias pass.
        using var unfused = new GuardedBuffer(outN, float.NaN);
        Conv2dKernel.Forward(x.Pointer, g, weights, null, unfused.Pointer);
        EpiloguePasses.Apply(unfused.Pointer, g.OutputPixels, cout, bias.Pointer, imageBias.Pointer, h * w, null, unfused.Pointer);
        Tolerance.AssertClose(expected, unfused.ToArray(), atol, 1e-5, $"conv {g}, unfused epilogue passes");
    }

    [Theory]
    [InlineData(1, 4, 4, 8, 8)]
    [InlineData(2, 9, 11, 20, 33)]
    [InlineData(3, 6, 5, 16, 17)]
    public void Winograd_with_image_bias_matches_the_direct_reference(int b, int h, int w, int cin, int cout)
    {
        var g = Conv2dGeometry.Same(b, h, w, cin, cout, 3);
        int outN = checked((int)g.OutputPixels * cout);
        using var x = GuardedUniform(b * h * w * cin, 61);
        using var bias = GuardedUniform(cout, 62);
        using var imageBias = GuardedUniform(b * cout, 63);
        using var residual = GuardedUniform(outN, 64);
        using var weights = new ConvolutionWeights(Uniform(cout * cin * 9, 65), cout, cin, 3, 3);
        using var winograd = new WinogradWeights(weights);
        var expected = new float[outN];
        fixed (float* pe = expected) Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pe, residual.Pointer, imageBias.Pointer);
        foreach (var isa in SupportedIsas)
        {
            using var y = new GuardedBuffer(outN, float.NaN);
            Conv2dKernel.ForwardWinograd(x.Pointer, g, winograd, bias.Pointer, y.Pointer, residual.Pointer, imageBias.Pointer, isa);
            Tolerance.AssertClose(expected, y.ToArray(), 4e-6 * Math.Max(16, 9 * cin), 1e-5, $"winograd {g} with image bias, {isa}");
        }
        using var twin = new GuardedBuffer(outN, float.NaN);
        Conv2dKernel.ForwardWinogradReference(x.Pointer, g, winograd, bias.Pointer, twin.Pointer, residual.Pointer, imageBias.Pointer);
        Tolerance.AssertClose(expected, twin.ToArray(), 1e-6 * Math.Max(16, 9 * cin), 1e-5, $"winograd reference {g} with image bias");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(12, 17, 31)]
    [InlineData(97, 33, 100)]
    [InlineData(200, 320, 320)]
    public void Epilogue_passes_equal_the_fused_epilogue(int m, int n, int k)
    {
        using var a = GuardedUniform(m * k, 11);
        using var bias = GuardedUniform(n, 12);
        using var w = new PackedMatrix(Uniform(n * k, 13), n, k);
        var residual = Uniform(m * n, 14);
        using var fused = GuardedBuffer.From(residual);
        GemmKernel.Linear(a.Pointer, k, m, w, bias.Pointer, fused.Pointer, n, fused.Pointer, n); // residual aliases the output
        using var product = new GuardedBuffer(m * n, float.NaN);
        using var unfused = GuardedBuffer.From(residual);
        GemmKernel.Linear(a.Pointer, k, m, w, null, product.Pointer, n);
        EpiloguePasses.Apply(product.Pointer, m, n, bias.Pointer, null, 0, unfused.Pointer, unfused.Pointer);
        // Same products, same additions in the same order: only the stored intermediate separates them, and it is exact.
        Assert.Equal(fused.ToArray(), unfused.ToArray());
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 13, 96, 32)]
    [InlineData(3, 31, 33, 3)]
    [InlineData(1, 4096, 320, 32)]
    [InlineData(2, 64, 1280, 32)]
    public void GroupNorm_then_silu_equals_the_fused_pass(int b, int s, int c, int groups)
    {
        using var x = GuardedUniform(b * s * c, 21 + c, 3);
        using var gamma = GuardedUniform(c, 22);
        using var beta = GuardedUniform(c, 23);
        using var fused = new GuardedBuffer(b * s * c, float.NaN);
        using var normed = new GuardedBuffer(b * s * c, float.NaN);
        using var unfused = new GuardedBuffer(b * s * c, float.NaN);
        var expected = new float[b * s * c];
        GroupNormKernel.Forward(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, fused.Pointer, silu: true);
        GroupNormKernel.ForwardUnfused(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, normed.Pointer, unfused.Pointer);
        fixed (float* pe = expected) GroupNormKernel.ForwardReference(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, pe, silu: true);
        Tolerance.AssertClose(fused.ToArray(), unfused.ToArray(), 1e-6, 1e-6, $"groupnorm+silu fused vs unfused b{b} s{s} c{c}");
        Tolerance.AssertClose(expected, unfused.ToArray(), 2e-5, 1e-4, $"groupnorm then silu vs reference b{b} s{s} c{c}");
    }

    [Theory]
    [InlineData(1, 1, GateKind.Geglu)]
    [InlineData(7, 17, GateKind.Geglu)]
    [InlineData(300, 1280, GateKind.Geglu)]
    [InlineData(33, 40, GateKind.Swiglu)]
    public void Gate_activation_then_multiply_equals_the_fused_gated_pass(int rows, int width, GateKind gate)
    {
        using var x = GuardedUniform(rows * 2 * width, 31, 3);
        using var fused = new GuardedBuffer(rows * width, float.NaN);
        Activations.Gated(gate, x.Pointer, rows, width, fused.Pointer);
        var expected = new float[rows * width];
        fixed (float* pe = expected) Activations.GatedReference(gate, x.Pointer, rows, width, pe);
        using var activated = new GuardedBuffer(rows * width, float.NaN);
        using var unfused = new GuardedBuffer(rows * width, float.NaN);
        var act = gate == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu;
        Activations.ApplyRows(act, x.Pointer + width, 2 * width, rows, width, activated.Pointer, width);
        TensorOps.Multiply(x.Pointer, 2 * width, activated.Pointer, width, rows, width, unfused.Pointer, width);
        Tolerance.AssertClose(fused.ToArray(), unfused.ToArray(), 1e-6, 1e-6, $"{gate} {rows}x{width} fused vs unfused");
        Tolerance.AssertClose(expected, unfused.ToArray(), 1e-5, 1e-5, $"{gate} {rows}x{width} unfused vs reference");
    }

    [Theory]
    [InlineData(1, 16, 1, GateKind.Geglu, true)]
    [InlineData(13, 32, 17, GateKind.Geglu, false)]
    [InlineData(25, 48, 100, GateKind.Swiglu, true)]
    [InlineData(97, 80, 513, GateKind.Geglu, true)]
    [InlineData(200, 16, 1030, GateKind.Swiglu, false)]
    [InlineData(40, 1280, 320, GateKind.Geglu, true)]
    public void Gate_in_the_gemm_epilogue_matches_the_projection_then_the_gate(int m, int inner, int k, GateKind gate, bool withBias)
    {
        int n = 2 * inner, ldc = inner + 3;
        var weight = Uniform(n * k, 41);
        var biasValues = Uniform(n, 42);
        using var a = GuardedUniform(m * k, 43);
        using var plain = new PackedMatrix(weight, n, k);
        using var interleaved = new PackedMatrix(GemmKernel.InterleaveGate(weight, inner, k), n, k);
        using var bias = GuardedBuffer.From(biasValues);
        using var interleavedBias = GuardedBuffer.From(GemmKernel.InterleaveGate(biasValues, inner, 1));
        // The spec in the checkpoint's layout: the projection [m, value | gate] in double, then the gate in double.
        var projected = new float[m * n];
        var expected = new float[m * inner];
        fixed (float* pp = projected, pe = expected)
        {
            GemmKernel.LinearReference(a.Pointer, k, m, plain, withBias ? bias.Pointer : null, pp, n, null, 0);
            Activations.GatedReference(gate, pp, m, inner, pe);
        }
        float* b = withBias ? interleavedBias.Pointer : null;
        double atol = 1e-6 * Math.Max(16, k);
        using var reference = new GuardedBuffer((m - 1) * ldc + inner, float.NaN);
        GemmKernel.LinearGatedReference(a.Pointer, k, m, interleaved, b, gate, reference.Pointer, ldc);
        foreach (var isa in SupportedIsas)
        {
            using var c = new GuardedBuffer((m - 1) * ldc + inner, float.NaN);
            GemmKernel.LinearGated(a.Pointer, k, m, interleaved, b, gate, c.Pointer, ldc, isa);
            for (int r = 0; r < m; r++)
            {
                Tolerance.AssertClose(expected.AsSpan(r * inner, inner), c.Span.Slice(r * ldc, inner), atol, 1e-5, $"gated GEMM {m}x{inner}x{k} {gate}, {isa}, row {r}");
                Tolerance.AssertClose(expected.AsSpan(r * inner, inner), reference.Span.Slice(r * ldc, inner), atol, 1e-5, $"gated reference {m}x{inner}x{k} {gate}, row {r}");
            }
            for (int r = 0; r < m - 1; r++) Assert.True(float.IsNaN(c.Span[r * ldc + inner]), "gated GEMM wrote into the row padding");
        }
        // The unfused twin on the interleaved projection: [m * inner / 16, 16 | 16] rows, act(gate) then the multiply.
        using var projection = new GuardedBuffer(m * n, float.NaN);
        GemmKernel.Linear(a.Pointer, k, m, interleaved, b, projection.Pointer, n);
        using var activated = new GuardedBuffer(m * inner, float.NaN);
        using var unfused = new GuardedBuffer(m * inner, float.NaN);
        int blocks = m * inner / GemmKernel.GateBlock, w = GemmKernel.GateBlock;
        Activations.ApplyRows(gate == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu, projection.Pointer + w, 2 * w, blocks, w, activated.Pointer, w);
        TensorOps.Multiply(projection.Pointer, 2 * w, activated.Pointer, w, blocks, w, unfused.Pointer, w);
        Tolerance.AssertClose(expected, unfused.ToArray(), atol, 1e-5, $"interleaved projection then the gate {m}x{inner}x{k} {gate}");
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    public void Gate_in_the_gemm_epilogue_reads_16_bit_weights(WeightPrecision precision)
    {
        const int m = 30, inner = 48, k = 600, n = 2 * inner;
        using var a = GuardedUniform(m * k, 51);
        using var bias = GuardedUniform(n, 52);
        using var w = new PackedMatrix(GemmKernel.InterleaveGate(Uniform(n * k, 53), inner, k), n, k, precision);
        var expected = new float[m * inner];
        fixed (float* pe = expected) GemmKernel.LinearGatedReference(a.Pointer, k, m, w, bias.Pointer, GateKind.Geglu, pe, inner);
        foreach (var isa in SupportedIsas)
        {
            using var c = new GuardedBuffer(m * inner, float.NaN);
            GemmKernel.LinearGated(a.Pointer, k, m, w, bias.Pointer, GateKind.Geglu, c.Pointer, inner, isa);
            Tolerance.AssertClose(expected, c.ToArray(), 1e-6 * k, 1e-5, $"gated GEMM, {precision} weights, {isa}");
        }
    }

    [Fact]
    public void Interleaving_the_gate_refuses_widths_that_are_not_whole_blocks()
    {
        Assert.Throws<ArgumentException>(() => GemmKernel.InterleaveGate(new float[2 * 24 * 3], 24, 3));
        Assert.Throws<ArgumentException>(() => GemmKernel.InterleaveGate(new float[10], 16, 1));
        using var w = new PackedMatrix(new float[48 * 4], 48, 4);
        using var x = new GuardedBuffer(4);
        Assert.Throws<ArgumentException>(() => GemmKernel.LinearGated(x.Pointer, 4, 1, w, null, GateKind.Geglu, x.Pointer, 24));
    }

    public static TheoryData<int, int, int, int, int, AttentionActivation> AttentionShapes => new()
    {
        // batch, heads, Tq, Tk, d, activation
        { 1, 1, 1, 1, 1, AttentionActivation.Softmax },
        { 2, 3, 7, 5, 8, AttentionActivation.Softmax },
        { 2, 2, 33, 77, 40, AttentionActivation.Relu },
        { 1, 2, 97, 257, 40, AttentionActivation.Softmax },
        { 1, 1, 200, 600, 15, AttentionActivation.Softmax },
        { 2, 1, 13, 256, 80, AttentionActivation.Relu },
        { 1, 1, 12, 40, 520, AttentionActivation.Softmax },
    };

    [Theory]
    [MemberData(nameof(AttentionShapes))]
    public void Unfused_attention_matches_reference_and_flash(int batch, int heads, int tq, int tk, int d, AttentionActivation act)
    {
        int c = heads * d, ldq = c + 3, ldk = c + 1, ldv = c, ldo = c + 2;
        using var q = GuardedUniform((batch * tq - 1) * ldq + c, 14, 2);
        using var k = GuardedUniform((batch * tk - 1) * ldk + c, 15, 2);
        using var v = GuardedUniform((batch * tk - 1) * ldv + c, 16);
        var expected = new float[(batch * tq - 1) * ldo + c];
        float scale = 1f / MathF.Sqrt(d);
        fixed (float* pe = expected)
            AttentionKernel.ForwardReference(new AttentionOperands(q.Pointer, ldq, k.Pointer, ldk, v.Pointer, ldv, pe, ldo),
                batch, heads, tq, tk, d, scale, act, causal: false);
        using var flash = new GuardedBuffer(expected.Length, float.NaN);
        AttentionKernel.ForwardFlash(new AttentionOperands(q.Pointer, ldq, k.Pointer, ldk, v.Pointer, ldv, flash.Pointer, ldo),
            batch, heads, tq, tk, d, scale, act, causal: false, KernelSettings.BestIsa);
        using var partial = new GuardedBuffer(expected.Length, float.NaN);
        AttentionKernel.ForwardPartialSoftmax(new AttentionOperands(q.Pointer, ldq, k.Pointer, ldk, v.Pointer, ldv, partial.Pointer, ldo),
            batch, heads, tq, tk, d, scale, act);
        using var matrix = new GuardedBuffer(expected.Length, float.NaN);
        AttentionKernel.ForwardScoreMatrix(new AttentionOperands(q.Pointer, ldq, k.Pointer, ldk, v.Pointer, ldv, matrix.Pointer, ldo),
            batch, heads, tq, tk, d, scale, act);
        string what = $"b{batch} h{heads} {tq}x{tk} d{d} {act}";
        for (int row = 0; row < batch * tq; row++)
        {
            Tolerance.AssertClose(expected.AsSpan(row * ldo, c), partial.Span.Slice(row * ldo, c), 2e-6, 1e-4, $"partially fused softmax {what}, row {row}");
            Tolerance.AssertClose(expected.AsSpan(row * ldo, c), matrix.Span.Slice(row * ldo, c), 2e-6, 1e-4, $"score matrix {what}, row {row}");
            Tolerance.AssertClose(flash.Span.Slice(row * ldo, c), partial.Span.Slice(row * ldo, c), 2e-6, 1e-4, $"partially fused vs flash {what}, row {row}");
        }
        for (int row = 0; row < batch * tq - 1; row++)
        {
            Assert.True(float.IsNaN(partial.Span[row * ldo + c]), "partially fused attention wrote into the row padding");
            Assert.True(float.IsNaN(matrix.Span[row * ldo + c]), "score-matrix attention wrote into the row padding");
        }
    }

    [Fact]
    public void Score_matrix_attention_refuses_sd15_512_instead_of_allocating_1_GiB()
    {
        // SD 1.5 at 512x512 with CFG: 2 images x 8 heads x 4096 x 4096 scores. Operands are never read before the refusal.
        using var one = new GuardedBuffer(320);
        var ops = new AttentionOperands(one.Pointer, 320, one.Pointer, 320, one.Pointer, 320, one.Pointer, 320);
        var e = Assert.Throws<InvalidOperationException>(() => AttentionKernel.ForwardScoreMatrix(ops, 2, 8, 4096, 4096, 40, 0.16f, AttentionActivation.Softmax));
        Assert.Contains("1024 MiB", e.Message);
        Assert.Contains("softmax fusion", e.Message);
    }
}
