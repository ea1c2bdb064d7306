using System.Text.Json;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tests.Support;
using Xunit.Abstractions;

namespace DiffusionSharp.Tests.Sampling.Rng;

public class PhiloxGeneratorTests(ITestOutputHelper output)
{
    /// <summary>The measured gap to real CUDA is 2.3e-6 (the GPU's fast sincos); see <see cref="PhiloxGenerator"/>.</summary>
    private const double CudaAtol = 3e-6;

    [Fact]
    public void SeedZero_MatchesTheA1111Docstring()
    {
        // modules/rng_philox.py: Generator(seed=0).randn(shape=(3, 4)), printed to 8 digits by A1111's float64 port.
        float[] expected = [-0.92466259f, -0.42534415f, -2.6438457f, 0.14518388f, -0.12086647f, -0.57972564f,
            -0.62285122f, -0.32838709f, -1.07454231f, -0.36314407f, -1.67105067f, 2.26550497f];
        var actual = new float[12];
        new PhiloxGenerator(0).NextNormal(actual);
        Tolerance.AssertClose(expected, actual, 1e-6, 0, "Philox seed 0 (3, 4)");
    }

    public static TheoryData<int, string> CudaCases()
    {
        var data = new TheoryData<int, string>();
        int i = 0;
        foreach (var c in SamplingFixture.Load("cuda_randn.json").GetProperty("cases").EnumerateArray())
            data.Add(i++, $"seed {c.GetProperty("seed").GetInt64()} shape [{string.Join(",", c.GetProperty("shape").Ints())}]");
        return data;
    }

    [Theory]
    [MemberData(nameof(CudaCases))]
    public void TwoCalls_MatchCudaTorchRandn(int index, string label)
    {
        // tests/fixtures/sampling/cuda_randn.json: torch 2.11 on an H100 (tools/fixtures/sampling_cuda_randn.py).
        var c = SamplingFixture.Load("cuda_randn.json").GetProperty("cases")[index];
        var generator = new PhiloxGenerator(c.GetProperty("seed").GetUInt64());
        double worst = 0;
        foreach (string call in new[] { "first", "second" })
        {
            var expected = c.GetProperty(call);
            var actual = new float[expected.GetProperty("numel").GetInt32()];
            generator.NextNormal(actual);
            worst = Math.Max(worst, CompareDraw(expected, actual, $"{label}, {call} call"));
        }
        Assert.Equal(2u, generator.Offset);
        output.WriteLine($"{label}: max |ours - CUDA| = {worst:G3}");
    }

    /// <summary>Compares a stored draw (all values, or head, tail, strided samples and the sum) and returns the largest gap.</summary>
    internal static double CompareDraw(JsonElement expected, float[] actual, string what, double atol = CudaAtol)
    {
        int n = actual.Length;
        double worst = 0;
        void Check(float[] want, IEnumerable<int> at, string part)
        {
            var got = at.Select(i => actual[i]).ToArray();
            Tolerance.AssertClose(want, got, atol, 0, $"{what} ({part})");
            worst = Math.Max(worst, want.Zip(got, (w, g) => Math.Abs((double)w - g)).DefaultIfEmpty(0).Max());
        }
        if (expected.TryGetProperty("values", out var values))
            Check(values.Floats(), Enumerable.Range(0, n), "values");
        if (expected.TryGetProperty("head", out var head))
        {
            var h = head.Floats();
            Check(h, Enumerable.Range(0, h.Length), "head");
        }
        if (expected.TryGetProperty("tail", out var tail) && tail.GetArrayLength() > 0)
        {
            var t = tail.Floats();
            Check(t, Enumerable.Range(n - t.Length, t.Length), "tail");
        }
        if (expected.TryGetProperty("strided", out var strided))
            Check(strided.Floats(), expected.GetProperty("strided_index").Ints(), "strided");
        if (expected.TryGetProperty("sum", out var sum))
            Assert.Equal(sum.GetDouble(), actual.Sum(v => (double)v), atol * Math.Sqrt(n) * 4);
        return worst;
    }

    [Fact]
    public void EachCall_AdvancesTheCounter_AndTheWholeSeedIsTheKey()
    {
        var a = new float[8];
        var b = new float[8];
        var g = new PhiloxGenerator(5);
        g.NextNormal(a);
        g.NextNormal(b);
        Assert.NotEqual(a, b);
        var h = new PhiloxGenerator((1UL << 32) + 5);
        var c = new float[8];
        h.NextNormal(c);
        Assert.NotEqual(a, c);
        Assert.Equal(1u, h.Offset);
    }

    [Fact]
    public void Draws_AreStandardNormal()
    {
        var values = new float[1 << 16];
        new PhiloxGenerator(12345).NextNormal(values);
        double mean = values.Average(v => (double)v);
        double variance = values.Average(v => ((double)v - mean) * ((double)v - mean));
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(variance, 0.98, 1.02);
    }
}
