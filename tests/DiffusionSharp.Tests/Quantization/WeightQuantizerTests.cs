using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Quantization;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Quantization;

/// <summary>The weight quantizers and the W4A4 layer against numpy (tools/fixtures/make_quant_fixtures.py).</summary>
public unsafe class WeightQuantizerTests
{
    [Fact]
    public void Int4_int8_and_nf4_codes_and_scales_match_numpy()
    {
        using var f = new QuantFixture();
        var w = f.Doubles("wq.weight");
        const int n = 24, k = 150;
        var (c4, s4) = WeightQuantizer.Int4Groups(w, n, k, 64);
        Assert.Equal(f.Floats("wq.int4_codes").Select(v => (sbyte)v), c4);
        Assert.Equal(f.Floats("wq.int4_scales"), s4);
        var (c8, s8) = WeightQuantizer.Int8Channels(w, n, k);
        Assert.Equal(f.Floats("wq.int8_codes").Select(v => (sbyte)v), c8);
        Assert.Equal(f.Floats("wq.int8_scales"), s8);
        var (cn, an) = WeightQuantizer.Nf4Groups(w, n, k, 64);
        Assert.Equal(f.Floats("wq.nf4_codes").Select(v => (byte)v), cn);
        Assert.Equal(f.Floats("wq.nf4_absmax"), an);
    }

    [Fact]
    public void W4A4_layer_matches_numpy_from_the_definition()
    {
        using var f = new QuantFixture();
        const int n = 24, k = 150, rank = 8, m = 7;
        var codes = f.Floats("wq.int4_codes").Select(v => (sbyte)v).ToArray();
        using var w = IntegerMatrix.W4A4(n, k, 64, codes, f.Floats("wq.int4_scales"), f.Floats("layer.smooth"), rank,
            f.Floats("layer.down"), f.Floats("layer.up"));
        var x = f.Floats("layer.x");
        var expected = Array.ConvertAll(f.Doubles("layer.y"), v => (float)v);
        var fast = new float[m * n];
        var reference = new float[m * n];
        fixed (float* px = x, pf = fast, pr = reference)
        {
            var rows = ActivationRows.Matrix(px, k, k);
            w.Forward(rows, m, null, pf, n);
            w.ForwardReference(rows, m, null, pr, n);
        }
        Tolerance.AssertClose(expected, reference, 1e-5, 1e-5, "reference vs numpy");
        Tolerance.AssertClose(expected, fast, 1e-5, 1e-5, "fast vs numpy");
    }

    [Fact]
    public void Quantized_weights_reconstruct_within_half_a_step()
    {
        using var f = new QuantFixture();
        var w = f.Doubles("wq.weight");
        var (codes, scales) = WeightQuantizer.Int4Groups(w, 24, 150, 64);
        var back = WeightQuantizer.Dequantize(codes, scales, 24, 150, 64);
        for (int o = 0; o < 24; o++)
        for (int i = 0; i < 150; i++)
            Assert.True(Math.Abs(back[o * 150 + i] - w[o * 150 + i]) <= 0.5 * scales[o * 3 + i / 64] * 1.01 + 1e-12);
    }

    [Fact]
    public void Non_finite_weights_are_refused()
        => Assert.Contains("finite", Assert.Throws<ArgumentException>(() => WeightQuantizer.Int4Groups([1, double.NaN], 1, 2, 64)).Message);
}
