using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Threading;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>
/// Every parallel kernel gives bitwise-identical results on 1, 2 and 3 threads (the same seed must give the same image
/// on any machine size). Shapes are chosen so each kernel really splits: several tiles, chunks or query blocks.
/// </summary>
public unsafe class DeterminismTests
{
    private delegate void Kernel(float* output);

    private static void AssertSameOnAnyThreadCount(int outputLength, Kernel kernel, string what)
    {
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var scheduler = new ThreadScheduler(threads);
            using var scope = scheduler.Use();
            var output = new float[outputLength];
            fixed (float* p = output) kernel(p);
            if (first == null) first = output;
            else AssertBitwiseEqual(first, output, $"{what} on {threads} threads vs 1");
        }
    }

    [Fact]
    public void Gemms_are_bitwise_deterministic()
    {
        const int m = 301, n = 97, k = 1100;
        var a = Uniform(m * k, 1);
        var b = Uniform(n * k, 2);
        var bias = Uniform(n, 3);
        using var w = new PackedMatrix(b, n, k);
        fixed (float* pa = a, pb = b, pbias = bias)
        {
            float* ca = pa, cb = pb, cbias = pbias;
            AssertSameOnAnyThreadCount(m * n, y => GemmKernel.Linear(ca, k, m, w, cbias, y, n), "linear");
            AssertSameOnAnyThreadCount(m * n, y => GemmKernel.MultiplyTransposed(ca, k, cb, k, y, n, m, n, k, 0.5f), "A·Bᵀ");
            AssertSameOnAnyThreadCount(m * 40, y => GemmKernel.Multiply(ca, k, cb, 40, y, 40, m, 40, k, 2f), "A·B");
            AssertSameOnAnyThreadCount(n, y => GemmKernel.Linear(ca, k, 1, w, cbias, y, n), "GEMV");
        }
    }

    [Fact]
    public void Convolutions_are_bitwise_deterministic()
    {
        var g = new Conv2dGeometry(2, 17, 13, 40, 33, 3, 3, 1, 1, 1, 1, 1, 1);
        var x = Uniform(2 * 17 * 13 * 40, 4);
        var bias = Uniform(33, 5);
        using var w = new ConvolutionWeights(Uniform(33 * 40 * 9, 6), 33, 40, 3, 3);
        var dg = new Conv2dGeometry(1, 20, 20, 40, 40, 3, 3, 2, 2, 1, 1, 1, 1);
        var filters = DepthwiseConv2dKernel.PackFilters(Uniform(40 * 9, 7), 40, 3, 3);
        var depthwiseBias = Uniform(40, 8);   // its own: the 33-channel conv's bias is too short for 40 channels
        fixed (float* px = x, pb = bias, pf = filters, pdb = depthwiseBias)
        {
            float* cx = px, cb = pb, cf = pf, cdb = pdb;
            AssertSameOnAnyThreadCount((int)g.OutputPixels * 33, y => Conv2dKernel.Forward(cx, g, w, cb, y), "conv 3x3");
            AssertSameOnAnyThreadCount((int)dg.OutputPixels * 40, y => DepthwiseConv2dKernel.Forward(cx, dg, cf, cdb, y), "depthwise");
        }
    }

    [Theory]
    [InlineData(AttentionActivation.Softmax, false)]
    [InlineData(AttentionActivation.Softmax, true)]
    [InlineData(AttentionActivation.Relu, false)]
    public void Attention_is_bitwise_deterministic(AttentionActivation act, bool causal)
    {
        const int batch = 2, heads = 3, t = 300, d = 40, c = heads * d;
        var q = Uniform(batch * t * c, 8);
        var k = Uniform(batch * t * c, 9);
        var v = Uniform(batch * t * c, 10);
        fixed (float* pq = q, pk = k, pv = v)
        {
            float* cq = pq, ck = pk, cv = pv;
            AssertSameOnAnyThreadCount(batch * t * c, o => AttentionKernel.Forward(new AttentionOperands(cq, c, ck, c, cv, c, o, c),
                batch, heads, t, t, d, 0.2f, act, causal), $"attention {act}");
        }
    }

    [Fact]
    public void Norms_and_elementwise_ops_are_bitwise_deterministic()
    {
        const int b = 2, s = 1500, c = 96;
        var x = Uniform(b * s * c, 11, 3);
        var gamma = Uniform(c, 12);
        var beta = Uniform(c, 13);
        fixed (float* px = x, pg = gamma, pb = beta)
        {
            float* cx = px, cg = pg, cb = pb;
            AssertSameOnAnyThreadCount(x.Length, y => GroupNormKernel.Forward(cx, b, s, c, 32, 1e-5f, cg, cb, y, true), "groupnorm");
            AssertSameOnAnyThreadCount(x.Length, y => LayerNormKernel.Forward(cx, b * s, c, 1e-5f, cg, cb, y), "layernorm");
            AssertSameOnAnyThreadCount(x.Length, y => Activations.Apply(ActivationKind.Gelu, cx, y, x.Length), "gelu");
            AssertSameOnAnyThreadCount(x.Length / 2, y => Activations.Gated(GateKind.Geglu, cx, b * s, c / 2, y), "geglu");
            AssertSameOnAnyThreadCount(x.Length, y => TensorOps.Add(cx, cx, y, x.Length), "add");
        }
    }
}
