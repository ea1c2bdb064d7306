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

    [Theory]
    [InlineData(false, "layer.x", "layer.y")]
    [InlineData(true, "asym.x", "asym.y")]
    public void W4A4_layer_matches_numpy_from_the_definition(bool asymmetricActivations, string input, string output)
    {
        using var f = new QuantFixture();
        const int n = 24, k = 150, rank = 8, m = 7;
        var codes = f.Floats("wq.int4_codes").Select(v => (sbyte)v).ToArray();
        using var w = IntegerMatrix.W4A4(n, k, 64, codes, f.Floats("wq.int4_scales"), f.Floats("layer.smooth"), rank,
            f.Floats("layer.down"), f.Floats("layer.up"), asymmetricActivations);
        var x = f.Floats(input);
        var expected = Array.ConvertAll(f.Doubles(output), v => (float)v);
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
    public void Gptq_codes_and_scales_match_numpy()
    {
        using var f = new QuantFixture();
        var (codes, scales) = Gptq.Int4Groups(f.Doubles("wq.weight"), 24, 150, 64, f.Doubles("gptq.x"), 96);
        Assert.Equal(f.Floats("gptq.scales"), scales);
        Assert.Equal(f.Floats("gptq.codes").Select(v => (sbyte)v), codes);
    }

    [Fact]
    public void Gptq_lowers_the_output_error_of_rounding_to_nearest_on_its_inputs()
    {
        using var f = new QuantFixture();
        var w = f.Doubles("wq.weight");
        var x = f.Doubles("gptq.x");
        var (gc, gs) = Gptq.Int4Groups(w, 24, 150, 64, x, 96);
        var (rc, rs) = WeightQuantizer.Int4Groups(w, 24, 150, 64);
        double gptq = OutputError(w, WeightQuantizer.Dequantize(gc, gs, 24, 150, 64), x, 96);
        double nearest = OutputError(w, WeightQuantizer.Dequantize(rc, rs, 24, 150, 64), x, 96);
        Assert.True(gptq < 0.7 * nearest, $"GPTQ {gptq:e3} vs round-to-nearest {nearest:e3}");
    }

    [Fact]
    public void Gptq_with_uncorrelated_inputs_is_round_to_nearest()
    {
        // H diagonal: no column's error has anywhere to go, so every code is the nearest one.
        using var f = new QuantFixture();
        var w = f.Doubles("wq.weight");
        var x = new double[150 * 150];
        for (int i = 0; i < 150; i++) x[i * 150 + i] = 1 + i % 7;
        Assert.Equal(WeightQuantizer.Int4Groups(w, 24, 150, 64), Gptq.Int4Groups(w, 24, 150, 64, x, 150), new CodesComparer());
    }

    private sealed class CodesComparer : IEqualityComparer<(sbyte[] Codes, float[] Scales)>
    {
        public bool Equals((sbyte[] Codes, float[] Scales) a, (sbyte[] Codes, float[] Scales) b) => a.Codes.SequenceEqual(b.Codes) && a.Scales.SequenceEqual(b.Scales);
        public int GetHashCode((sbyte[] Codes, float[] Scales) v) => 0;
    }

    private static double OutputError(double[] w, double[] q, double[] x, int rows)
    {
        const int n = 24, k = 150;
        double error = 0;
        for (int r = 0; r < rows; r++)
        for (int o = 0; o < n; o++)
        {
            double d = 0;
            for (int i = 0; i < k; i++) d += x[r * k + i] * (w[o * k + i] - q[o * k + i]);
            error += d * d;
        }
        return error;
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
