using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>Each fast kernel against its reference twin over odd, tail and one-element shapes.</summary>
public unsafe class KernelTwinTests
{
    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 17, 5)]
    [InlineData(5, 16, 33)]
    [InlineData(77, 40, 32)]
    [InlineData(64, 320, 320)]
    [InlineData(9, 33, 1)]
    public void Linear_matches_reference(int m, int n, int k)
    {
        var a = Random(m * k, 1); var w = Random(n * k, 2); var bias = Random(n, 3); var res = Random(m * n, 4);
        using var packed = new PackedMatrix(w, n, k);
        var fast = new float[m * n]; var reference = new float[m * n];
        fixed (float* pa = a, pb = bias, pr = res, pf = fast, pref = reference)
        {
            GemmKernel.Linear(pa, k, m, packed, pb, pf, n, pr, n);
            GemmKernel.LinearReference(pa, k, m, packed, pb, pref, n, pr, n);
        }
        Tolerance.AssertClose(reference, fast, 1e-5, 1e-5, $"linear {m}x{n}x{k}");
    }

    [Theory]
    [InlineData(1, 5, 5, 3, 4, 3, 1, 1)]
    [InlineData(2, 8, 7, 16, 17, 3, 1, 1)]
    [InlineData(1, 8, 8, 5, 6, 3, 2, 1)]
    [InlineData(1, 6, 6, 33, 16, 1, 1, 0)]
    public void Conv2d_matches_reference(int b, int h, int w, int cin, int cout, int kernel, int stride, int pad)
    {
        var g = new Conv2dGeometry(b, h, w, cin, cout, kernel, kernel, stride, stride, pad, pad, pad, pad);
        var x = Random(b * h * w * cin, 5); var wt = Random(cout * cin * kernel * kernel, 6); var bias = Random(cout, 7);
        using var weights = new ConvolutionWeights(wt, cout, cin, kernel, kernel);
        int outN = (int)g.OutputPixels * cout;
        var fast = new float[outN]; var reference = new float[outN];
        fixed (float* px = x, pb = bias, pf = fast, pr = reference)
        {
            Conv2dKernel.Forward(px, g, weights, pb, pf);
            Conv2dKernel.ForwardReference(px, g, weights, pb, pr, null);
        }
        Tolerance.AssertClose(reference, fast, 1e-5, 1e-5, $"conv {g}");
    }

    [Theory]
    [InlineData(1, 4, 4, 1, 1)]
    [InlineData(2, 9, 7, 37, 2)]
    public void Depthwise_matches_reference(int b, int h, int w, int c, int stride)
    {
        var g = new Conv2dGeometry(b, h, w, c, c, 3, 3, stride, stride, 1, 1, 1, 1);
        var x = Random(b * h * w * c, 8); var f = DepthwiseConv2dKernel.PackFilters(Random(c * 9, 9), c, 3, 3); var bias = Random(c, 10);
        int outN = (int)g.OutputPixels * c;
        var fast = new float[outN]; var reference = new float[outN];
        fixed (float* px = x, pf = f, pb = bias, po = fast, pr = reference)
        {
            DepthwiseConv2dKernel.Forward(px, g, pf, pb, po);
            DepthwiseConv2dKernel.ForwardReference(px, g, pf, pb, pr);
        }
        Tolerance.AssertClose(reference, fast, 1e-5, 1e-5, "depthwise");
    }

    [Theory]
    [InlineData(1, 1, 1, 1, true)]
    [InlineData(2, 5, 32, 8, false)]
    [InlineData(2, 13, 96, 32, true)]
    public void GroupNorm_matches_reference(int b, int s, int c, int groups, bool silu)
    {
        var x = Random(b * s * c, 11, 3); var gamma = Random(c, 12); var beta = Random(c, 13);
        var fast = new float[x.Length]; var reference = new float[x.Length];
        fixed (float* px = x, pg = gamma, pb = beta, pf = fast, pr = reference)
        {
            GroupNormKernel.Forward(px, b, s, c, groups, 1e-5f, pg, pb, pf, silu);
            GroupNormKernel.ForwardReference(px, b, s, c, groups, 1e-5f, pg, pb, pr, silu);
        }
        Tolerance.AssertClose(reference, fast, 2e-5, 1e-4, "groupnorm");
    }

    [Theory]
    [InlineData(1, 1, 1, 1, 1, false, AttentionActivation.Softmax)]
    [InlineData(2, 3, 7, 5, 8, false, AttentionActivation.Softmax)]
    [InlineData(1, 2, 9, 9, 17, true, AttentionActivation.Softmax)]
    [InlineData(2, 2, 33, 77, 40, false, AttentionActivation.Relu)]
    public void Attention_matches_reference(int batch, int heads, int tq, int tk, int d, bool causal, AttentionActivation act)
    {
        int c = heads * d;
        var q = Random(batch * tq * c, 14, 2); var k = Random(batch * tk * c, 15, 2); var v = Random(batch * tk * c, 16);
        var fast = new float[batch * tq * c]; var reference = new float[batch * tq * c];
        fixed (float* pq = q, pk = k, pv = v, pf = fast, pr = reference)
        {
            var opsFast = new AttentionOperands(pq, c, pk, c, pv, c, pf, c);
            var opsRef = new AttentionOperands(pq, c, pk, c, pv, c, pr, c);
            AttentionKernel.Forward(opsFast, batch, heads, tq, tk, d, 1f / MathF.Sqrt(d), act, causal);
            AttentionKernel.ForwardReference(opsRef, batch, heads, tq, tk, d, 1f / MathF.Sqrt(d), act, causal);
        }
        Tolerance.AssertClose(reference, fast, 1e-5, 1e-4, "attention");
    }

    [Fact]
    public void Fast_erf_and_activations_match_double_reference()
    {
        var x = new float[4001];
        for (int i = 0; i < x.Length; i++) x[i] = -10f + i * 0.005f;
        foreach (var kind in new[] { ActivationKind.Silu, ActivationKind.Gelu, ActivationKind.QuickGelu })
        {
            var y = new float[x.Length];
            fixed (float* px = x, py = y) Activations.Apply(kind, px, py, x.Length);
            var expected = x.Select(v => (float)Activations.Reference(kind, v)).ToArray();
            Tolerance.AssertClose(expected, y, 1e-6, 1e-5, kind.ToString());
        }
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(-2.0, -0.9953222650189527)]
    [InlineData(3.5, 0.9999992569016276)]
    public void Erf_reference_matches_published_values(double x, double expected)
        => Assert.Equal(expected, Erf.Reference(x), 12);
}
