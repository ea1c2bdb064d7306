using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>Implicit-GEMM convolution on every supported path against the direct double-precision reference.</summary>
public unsafe class Conv2dKernelTests
{
    public static TheoryData<int, int, int, int, int, int, int, int, int> Geometries => new()
    {
        // batch, h, w, cin, cout, kernel, stride, pad (top/left), pad (bottom/right)
        { 1, 1, 1, 1, 1, 3, 1, 1, 1 },
        { 1, 5, 5, 3, 4, 3, 1, 1, 1 },
        { 2, 8, 7, 16, 17, 3, 1, 1, 1 },
        { 1, 9, 11, 4, 33, 3, 1, 1, 1 },
        { 1, 6, 5, 17, 31, 3, 1, 1, 1 },
        { 1, 8, 8, 5, 6, 3, 2, 1, 1 },
        { 1, 9, 7, 33, 16, 3, 2, 0, 1 },
        { 2, 7, 9, 64, 47, 3, 1, 1, 1 },
        { 1, 5, 6, 129, 49, 3, 1, 1, 1 },
        { 1, 6, 6, 33, 16, 1, 1, 0, 0 },
        { 2, 3, 5, 600, 65, 1, 1, 0, 0 },
        { 1, 7, 7, 8, 9, 1, 2, 0, 0 },
        { 1, 12, 10, 3, 13, 5, 1, 2, 2 },
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Conv2d_matches_reference_on_every_path(int b, int h, int w, int cin, int cout, int kernel, int stride, int padBefore, int padAfter)
    {
        var g = new Conv2dGeometry(b, h, w, cin, cout, kernel, kernel, stride, stride, padBefore, padBefore, padAfter, padAfter);
        int outN = checked((int)g.OutputPixels * cout);
        using var x = GuardedUniform(b * h * w * cin, 5);
        using var bias = GuardedUniform(cout, 7);
        using var residual = GuardedUniform(outN, 8);
        using var weights = new ConvolutionWeights(Uniform(cout * cin * kernel * kernel, 6), cout, cin, kernel, kernel);
        var expected = new float[outN];
        fixed (float* pe = expected) Conv2dKernel.ForwardReference(x.Pointer, g, weights, bias.Pointer, pe, residual.Pointer);
        foreach (var isa in SupportedIsas)
        {
            using var y = new GuardedBuffer(outN, float.NaN);
            Conv2dKernel.Forward(x.Pointer, g, weights, bias.Pointer, y.Pointer, residual.Pointer, isa);
            Tolerance.AssertClose(expected, y.ToArray(), 1e-6 * Math.Max(16, g.PatchSize), 1e-5, $"conv {g}, {isa}");
        }
    }

    /// <summary>SD 1.5's 64x64 level, 320 -> 320 channels, checked on sampled pixels against a direct sum over PyTorch-layout weights.</summary>
    [Fact]
    public void Conv2d_sd15_64x64x320_matches_direct_sum_on_sampled_pixels()
    {
        const int h = 64, w = 64, c = 320;
        var g = Conv2dGeometry.Same(1, h, w, c, c, 3);
        var x = Uniform(h * w * c, 21);
        var torchWeight = Uniform(c * c * 9, 22, 0.05f);
        var bias = Uniform(c, 23);
        using var weights = new ConvolutionWeights(torchWeight, c, c, 3, 3);
        var y = new float[h * w * c];
        fixed (float* px = x, pb = bias, py = y) Conv2dKernel.Forward(px, g, weights, pb, py);

        var rng = new Random(24);
        var expected = new float[c];
        for (int sample = 0; sample < 48; sample++)
        {
            int oy = sample < 4 ? (sample & 1) * (h - 1) : rng.Next(h);
            int ox = sample < 4 ? (sample >> 1) * (w - 1) : rng.Next(w);
            for (int o = 0; o < c; o++)
            {
                double sum = bias[o];
                for (int ci = 0; ci < c; ci++)
                for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                {
                    int iy = oy + ky - 1, ix = ox + kx - 1;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    sum += (double)x[(iy * w + ix) * c + ci] * torchWeight[((o * c + ci) * 3 + ky) * 3 + kx];
                }
                expected[o] = (float)sum;
            }
            Tolerance.AssertClose(expected, y.AsSpan((oy * w + ox) * c, c), 2e-4, 1e-5, $"conv 64x64x320 pixel ({oy}, {ox})");
        }
    }

    [Fact]
    public void Conv2d_propagates_nan_and_infinity_in_activations_like_reference()
    {
        var g = Conv2dGeometry.Same(1, 9, 8, 20, 24, 3);
        var xv = Uniform(9 * 8 * 20, 25);
        var wv = Uniform(24 * 20 * 9, 26);
        // Specials in the activations only: a non-finite weight meets the zero padding at the borders, where the fast
        // path computes 0·w (NaN for w = ±inf, as a zero-padded PyTorch convolution) and the reference skips the tap.
        PlantSpecials(xv, 27, 10);
        using var x = GuardedBuffer.From(xv);
        using var weights = new ConvolutionWeights(wv, 24, 20, 3, 3);
        var expected = new float[(int)g.OutputPixels * 24];
        fixed (float* pe = expected) Conv2dKernel.ForwardReference(x.Pointer, g, weights, null, pe, null);
        foreach (var isa in SupportedIsas)
        {
            using var y = new GuardedBuffer(expected.Length);
            Conv2dKernel.Forward(x.Pointer, g, weights, null, y.Pointer, null, isa);
            AssertSameSpecials(expected, y.Span, 2e-4, 1e-5, $"conv specials, {isa}");
        }
    }

    [Fact]
    public void Depthwise_matches_reference()
    {
        foreach (var (b, h, w, c, stride) in new[] { (1, 4, 4, 1, 1), (2, 9, 7, 37, 2), (1, 6, 5, 16, 1), (1, 3, 3, 33, 1) })
        {
            var g = new Conv2dGeometry(b, h, w, c, c, 3, 3, stride, stride, 1, 1, 1, 1);
            using var x = GuardedUniform(b * h * w * c, 8);
            var f = DepthwiseConv2dKernel.PackFilters(Uniform(c * 9, 9), c, 3, 3);
            using var filters = GuardedBuffer.From(f);
            using var bias = GuardedUniform(c, 10);
            int outN = (int)g.OutputPixels * c;
            using var y = new GuardedBuffer(outN);
            var expected = new float[outN];
            DepthwiseConv2dKernel.Forward(x.Pointer, g, filters.Pointer, bias.Pointer, y.Pointer);
            fixed (float* pe = expected) DepthwiseConv2dKernel.ForwardReference(x.Pointer, g, filters.Pointer, bias.Pointer, pe);
            Tolerance.AssertClose(expected, y.ToArray(), 1e-5, 1e-5, $"depthwise {g}");
        }
    }

    [Fact]
    public void Mismatched_weights_and_bad_geometry_are_rejected()
    {
        using var weights = new ConvolutionWeights(new float[4 * 3 * 9], 4, 3, 3, 3);
        var buffer = new float[1024];
        fixed (float* p = buffer)
        {
            float* q = p;
            var e = Assert.Throws<ArgumentException>(() => Conv2dKernel.Forward(q, Conv2dGeometry.Same(1, 4, 4, 5, 4, 3), weights, null, q));
            Assert.Contains("do not match", e.Message);
            Assert.Throws<ArgumentException>(() => Conv2dKernel.Forward(q, new Conv2dGeometry(1, 2, 2, 3, 4, 3, 3), weights, null, q));
        }
        Assert.Throws<ArgumentException>(() => new ConvolutionWeights(new float[10], 4, 3, 3, 3));
    }
}
