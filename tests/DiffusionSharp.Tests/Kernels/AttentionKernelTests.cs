using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>Flash attention (every supported path) against the double-precision per-row reference.</summary>
public unsafe class AttentionKernelTests
{
    public static TheoryData<int, int, int, int, int, bool, AttentionActivation> Shapes => new()
    {
        // batch, heads, Tq, Tk, d, causal, activation
        { 1, 1, 1, 1, 1, false, AttentionActivation.Softmax },
        { 2, 3, 7, 5, 8, false, AttentionActivation.Softmax },
        { 1, 2, 9, 9, 17, true, AttentionActivation.Softmax },
        { 2, 2, 33, 77, 40, false, AttentionActivation.Relu },
        { 1, 2, 97, 257, 40, false, AttentionActivation.Softmax },
        { 1, 1, 200, 600, 15, false, AttentionActivation.Softmax },
        { 1, 2, 77, 77, 64, true, AttentionActivation.Softmax },
        { 1, 1, 300, 300, 16, true, AttentionActivation.Softmax },
        { 1, 1, 130, 130, 33, true, AttentionActivation.Relu },
        { 2, 1, 13, 256, 80, false, AttentionActivation.Relu },
        { 1, 1, 49, 31, 160, false, AttentionActivation.Softmax },
        { 1, 1, 12, 40, 520, false, AttentionActivation.Softmax },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Attention_matches_reference_on_every_path(int batch, int heads, int tq, int tk, int d, bool causal, AttentionActivation act)
    {
        int c = heads * d, ldq = c + 3, ldk = c + 1, ldv = c, ldo = c + 2;
        using var q = GuardedUniform((batch * tq - 1) * ldq + c, 14, 2);
        using var k = GuardedUniform((batch * tk - 1) * ldk + c, 15, 2);
        using var v = GuardedUniform((batch * tk - 1) * ldv + c, 16);
        var expected = new float[(batch * tq - 1) * ldo + c];
        float scale = 1f / MathF.Sqrt(d);
        fixed (float* pe = expected)
            AttentionKernel.ForwardReference(new AttentionOperands(q.Pointer, ldq, k.Pointer, ldk, v.Pointer, ldv, pe, ldo),
                batch, heads, tq, tk, d, scale, act, causal);
        foreach (var isa in SupportedIsas)
        {
            using var o = new GuardedBuffer(expected.Length, float.NaN);
            AttentionKernel.ForwardFlash(new AttentionOperands(q.Pointer, ldq, k.Pointer, ldk, v.Pointer, ldv, o.Pointer, ldo),
                batch, heads, tq, tk, d, scale, act, causal, isa);
            for (int row = 0; row < batch * tq; row++)
                Tolerance.AssertClose(expected.AsSpan(row * ldo, c), o.Span.Slice(row * ldo, c), 2e-6, 1e-4,
                    $"attention b{batch} h{heads} {tq}x{tk} d{d} {(causal ? "causal " : "")}{act}, {isa}, row {row}");
            for (int row = 0; row < batch * tq - 1; row++)
                Assert.True(float.IsNaN(o.Span[row * ldo + c]), "attention wrote into the row padding");
        }
    }

    /// <summary>SD 1.5's largest self-attention (64x64 latent: 4096 tokens, 8 heads of 40) and its cross-attention, on sampled query rows.</summary>
    [Theory]
    [InlineData(4096)]
    [InlineData(77)]
    public void Attention_sd15_64x64_level_matches_reference_on_sampled_rows(int tk)
    {
        const int tq = 4096, heads = 8, d = 40, c = heads * d;
        var q = Uniform(tq * c, 31, 2);
        var k = Uniform(tk * c, 32, 2);
        var v = Uniform(tk * c, 33);
        var o = new float[tq * c];
        var expected = new float[c];
        float scale = 1f / MathF.Sqrt(d);
        fixed (float* pq = q, pk = k, pv = v, po = o, pe = expected)
        {
            AttentionKernel.Forward(new AttentionOperands(pq, c, pk, c, pv, c, po, c), 1, heads, tq, tk, d, scale, AttentionActivation.Softmax, false);
            foreach (int row in new[] { 0, 1, 95, 96, 97, 1000, 2047, 3071, 4000, 4095 })
            {
                AttentionKernel.ForwardReference(new AttentionOperands(pq + row * c, c, pk, c, pv, c, pe, c), 1, heads, 1, tk, d, scale,
                    AttentionActivation.Softmax, false);
                Tolerance.AssertClose(expected, o.AsSpan(row * c, c), 2e-6, 1e-4, $"SD attention Tk {tk}, row {row}");
            }
        }
    }

    [Fact]
    public void Scratch_memory_does_not_grow_with_the_query_count()
    {
        long bytes = AttentionKernel.ScratchFloats(4096, 40) * sizeof(float);
        Assert.True(bytes < 2 << 20, $"{bytes} bytes of scratch per thread for 4096 keys of 40");
        Assert.True(bytes < 4096L * 4096 * sizeof(float) / 32);
    }

    [Theory]
    [InlineData(AttentionActivation.Softmax, false)]
    [InlineData(AttentionActivation.Softmax, true)]
    [InlineData(AttentionActivation.Relu, false)]
    public void Nan_and_infinity_propagate_like_reference(AttentionActivation act, bool causal)
    {
        const int heads = 2, t = 70, d = 24, c = heads * d;
        var q = Uniform(t * c, 41);
        var k = Uniform(t * c, 42);
        var v = Uniform(t * c, 43);
        q[5 * c + 3] = float.NaN;
        q[20 * c + d + 1] = float.PositiveInfinity;
        k[33 * c + 2] = float.NegativeInfinity;
        v[50 * c + d + 7] = float.NaN;
        var expected = new float[t * c];
        foreach (var isa in SupportedIsas)
        {
            var o = new float[t * c];
            fixed (float* pq = q, pk = k, pv = v, po = o, pe = expected)
            {
                AttentionKernel.ForwardReference(new AttentionOperands(pq, c, pk, c, pv, c, pe, c), 1, heads, t, t, d, 0.2f, act, causal);
                AttentionKernel.ForwardFlash(new AttentionOperands(pq, c, pk, c, pv, c, po, c), 1, heads, t, t, d, 0.2f, act, causal, isa);
            }
            AssertSameSpecials(expected, o, 2e-6, 1e-4, $"attention specials {act}{(causal ? " causal" : "")}, {isa}");
        }
    }

    [Fact]
    public void Bad_sizes_are_rejected()
    {
        var buffer = new float[64];
        fixed (float* p = buffer)
        {
            var ops = new AttentionOperands(p, 8, p, 8, p, 8, p, 8);
            Assert.Throws<ArgumentException>(() => AttentionKernel.Forward(ops, 1, 2, 0, 4, 4, 1f, AttentionActivation.Softmax, false));
            Assert.Throws<ArgumentException>(() => AttentionKernel.Forward(ops, 1, 2, 3, 4, 4, 1f, AttentionActivation.Softmax, true));
            var e = Assert.Throws<ArgumentException>(() => AttentionKernel.Forward(ops, 1, 4, 2, 2, 4, 1f, AttentionActivation.Softmax, false));
            Assert.Contains("strides", e.Message);
        }
    }
}
