using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels.Quant;

/// <summary>The NF4 weight-only layer: storage, and the dequantize-then-fp32-GEMM path against its reference.</summary>
public unsafe class Nf4MatrixTests
{
    private static Nf4Matrix Random(int n, int k, int group, int seed)
    {
        var rng = new Random(seed);
        var codes = new byte[n * k];
        for (int i = 0; i < codes.Length; i++) codes[i] = (byte)rng.Next(16);
        return new Nf4Matrix(n, k, group, codes, QuantTestData.Floats(rng, n * ((k + group - 1) / group), 0.1f, 1f));
    }

    [Fact]
    public void Dequantized_weight_is_level_times_group_absmax()
    {
        byte[] codes = [0, 15, 7, 3, 12];
        using var w = new Nf4Matrix(1, 5, 2, codes, [2f, 3f, 4f]);
        Assert.Equal(-2f, w[0, 0]);
        Assert.Equal(2f, w[0, 1]);
        Assert.Equal(0f, w[0, 2]);
        Assert.Equal(Nf4Matrix.Levels[3] * 3f, w[0, 3]);
        Assert.Equal(Nf4Matrix.Levels[12] * 4f, w[0, 4]);
        Assert.Contains("0..15", Assert.Throws<ArgumentException>(() => new Nf4Matrix(1, 1, 64, [16], [1f])).Message);
    }

    [Theory]
    [MemberData(nameof(IsaData), MemberType = typeof(KernelTestData))]
    public void Matches_reference_over_shapes(KernelIsa isa)
    {
        int[] ms = [1, 5, 13, 40], ns = [1, 17, 33, 70], ks = [1, 63, 64, 130];
        int combo = 0;
        foreach (int m in ms)
        foreach (int n in ns)
        {
            int k = ks[combo++ % ks.Length];
            using var w = Random(n, k, 64, combo);
            using var a = GuardedUniform(m * k, combo + 1);
            using var bias = GuardedUniform(n, combo + 2);
            using var c = new GuardedBuffer(m * n);
            var expected = new float[m * n];
            var rows = ActivationRows.Matrix(a.Pointer, k, k);
            fixed (float* pe = expected) w.ForwardReference(rows, m, bias.Pointer, pe, n);
            w.Forward(rows, m, bias.Pointer, c.Pointer, n, null, 0, isa);
            Tolerance.AssertClose(expected, c.ToArray(), 1e-5 * Math.Max(16, k), 1e-5, $"nf4 {m}x{n}x{k}, {isa}");
        }
    }

    [Fact]
    public void Convolution_patches_match_reference()
    {
        var g = Conv2dGeometry.Same(1, 6, 5, 20, 36, 3);
        using var w = Random(g.OutChannels, g.PatchSize, 64, 9);
        using var x = GuardedUniform(6 * 5 * 20, 10);
        int pixels = (int)g.OutputPixels;
        using var c = new GuardedBuffer(pixels * g.OutChannels);
        var expected = new float[pixels * g.OutChannels];
        var rows = ActivationRows.Patches(x.Pointer, g);
        fixed (float* pe = expected) w.ForwardReference(rows, pixels, null, pe, g.OutChannels);
        w.Forward(rows, pixels, null, c.Pointer, g.OutChannels);
        Tolerance.AssertClose(expected, c.ToArray(), 1e-3, 1e-5, "nf4 conv");
    }
}
