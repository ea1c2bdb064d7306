using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Tests.Support;
using DiffusionSharp.Threading;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>GroupNorm(+SiLU) and LayerNorm against their double-precision references.</summary>
public unsafe class NormKernelTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, true, 0f)]
    [InlineData(2, 5, 32, 8, false, 0f)]
    [InlineData(2, 13, 96, 32, true, 0f)]
    [InlineData(1, 17, 17, 17, false, 0f)]
    [InlineData(3, 31, 33, 3, true, 0f)]
    [InlineData(1, 4096, 320, 32, true, 0f)]
    [InlineData(2, 1000, 48, 16, false, 1000f)]
    [InlineData(1, 64, 1280, 32, true, 0f)]
    public void GroupNorm_matches_reference(int b, int s, int c, int groups, bool silu, float offset)
    {
        var xv = Uniform(b * s * c, 11 + c, 3);
        for (int i = 0; i < xv.Length; i++) xv[i] += offset;
        using var x = GuardedBuffer.From(xv);
        using var gamma = GuardedUniform(c, 12);
        using var beta = GuardedUniform(c, 13);
        using var y = new GuardedBuffer(xv.Length);
        var expected = new float[xv.Length];
        GroupNormKernel.Forward(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, y.Pointer, silu);
        fixed (float* pe = expected) GroupNormKernel.ForwardReference(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, pe, silu);
        Tolerance.AssertClose(expected, y.ToArray(), 2e-5, 1e-4, $"groupnorm b{b} s{s} c{c} g{groups} offset {offset}");
    }

    [Fact]
    public void GroupNorm_spreads_nan_and_infinity_over_their_group_like_reference()
    {
        const int b = 2, s = 40, c = 64, groups = 8;
        var xv = Uniform(b * s * c, 23);
        xv[3 * c + 5] = float.NaN;
        xv[(s + 7) * c + 40] = float.PositiveInfinity;
        xv[(s + 9) * c + 41] = float.NegativeInfinity;
        using var x = GuardedBuffer.From(xv);
        using var gamma = GuardedUniform(c, 24);
        using var beta = GuardedUniform(c, 25);
        using var y = new GuardedBuffer(xv.Length);
        var expected = new float[xv.Length];
        GroupNormKernel.Forward(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, y.Pointer, true);
        fixed (float* pe = expected) GroupNormKernel.ForwardReference(x.Pointer, b, s, c, groups, 1e-5f, gamma.Pointer, beta.Pointer, pe, true);
        Assert.Equal(2 * s * (c / groups), expected.Count(float.IsNaN));
        AssertSameSpecials(expected, y.Span, 2e-5, 1e-4, "groupnorm specials");
    }

    [Fact]
    public void GroupNorm_in_place_matches_out_of_place()
    {
        const int b = 2, s = 300, c = 64, groups = 32;
        var xv = Uniform(b * s * c, 14, 2);
        var gamma = Uniform(c, 15);
        var beta = Uniform(c, 16);
        var expected = new float[xv.Length];
        fixed (float* px = xv, pg = gamma, pb = beta, pe = expected)
        {
            GroupNormKernel.Forward(px, b, s, c, groups, 1e-6f, pg, pb, pe, true);
            GroupNormKernel.Forward(px, b, s, c, groups, 1e-6f, pg, pb, px, true);
        }
        AssertBitwiseEqual(expected, xv, "groupnorm in place");
    }

    [Fact]
    public void Norms_allocate_no_managed_memory_per_call()
    {
        const int s = 256, c = 320;
        var x = Uniform(s * c, 17);
        var gamma = Uniform(c, 18);
        var beta = Uniform(c, 19);
        var y = new float[x.Length];
        using var single = new ThreadScheduler(1);
        using var scope = single.Use();
        fixed (float* px = x, pg = gamma, pb = beta, py = y)
        {
            GroupNormKernel.Forward(px, 1, s, c, 32, 1e-5f, pg, pb, py, true);
            LayerNormKernel.Forward(px, s, c, 1e-5f, pg, pb, py);
            long before = GC.GetAllocatedBytesForCurrentThread();
            GroupNormKernel.Forward(px, 1, s, c, 32, 1e-5f, pg, pb, py, true);
            LayerNormKernel.Forward(px, s, c, 1e-5f, pg, pb, py);
            Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        }
    }

    [Fact]
    public void GroupNorm_rejects_bad_groups_with_a_clear_message()
    {
        var buffer = new float[16];
        fixed (float* p = buffer)
        {
            float* q = p;
            var e = Assert.Throws<ArgumentException>(() => GroupNormKernel.Forward(q, 1, 2, 6, 4, 1e-5f, q, q, q, false));
            Assert.Contains("6 channels", e.Message);
            Assert.Throws<ArgumentNullException>(() => GroupNormKernel.Forward(q, 1, 2, 4, 2, 1e-5f, null, q, q, false));
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(77, 768)]
    [InlineData(5, 33)]
    [InlineData(64, 320)]
    [InlineData(9, 1280)]
    public void LayerNorm_matches_reference(int rows, int cols)
    {
        var xv = Uniform(rows * cols, 20 + cols, 4);
        for (int i = 0; i < xv.Length; i++) xv[i] += 50f;
        using var x = GuardedBuffer.From(xv);
        using var gamma = GuardedUniform(cols, 21);
        using var beta = GuardedUniform(cols, 22);
        using var y = new GuardedBuffer(xv.Length);
        var expected = new float[xv.Length];
        LayerNormKernel.Forward(x.Pointer, rows, cols, 1e-5f, gamma.Pointer, beta.Pointer, y.Pointer);
        fixed (float* pe = expected) LayerNormKernel.ForwardReference(x.Pointer, rows, cols, 1e-5f, gamma.Pointer, beta.Pointer, pe);
        Tolerance.AssertClose(expected, y.ToArray(), 2e-5, 1e-4, $"layernorm {rows}x{cols}");
    }
}
