using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tests.Support;
using Xunit.Abstractions;

namespace DiffusionSharp.Tests.Sampling.Rng;

public class TorchCpuGeneratorTests(ITestOutputHelper output)
{
    [Fact]
    public void MatchesPublishedTorchRandnValues()
    {
        // research/samplers.md section 6.1 (4 decimals).
        Tolerance.AssertClose(new[] { 1.5410f, -0.2934f, -2.1788f, 0.5684f }, Draw(0, 4), 5e-5, 0, "seed 0 randn(4)");
        Tolerance.AssertClose(new[] { 0.3367f, 0.1288f, 0.2345f, 0.2303f, -1.1229f, -0.1863f }, Draw(42, 6), 5e-5, 0, "seed 42 randn(6)");
        Tolerance.AssertClose(new[] { -1.1258f, -1.1524f, -0.2506f, -0.4339f, 0.8487f, 0.6920f, -0.3160f, -2.1152f }, Draw(0, 16)[..8], 5e-5, 0, "seed 0 randn(16)");
        Tolerance.AssertClose(new[] { 1.9269f, 1.4873f, 0.9007f, -2.1055f, 0.6784f, -1.2345f, -0.0431f, -1.6047f }, Draw(42, 16)[..8], 5e-5, 0, "seed 42 randn(16)");
        Tolerance.AssertClose(new[] { -1.5256f, -0.7502f, -0.6540f, -1.6095f }, Draw(1, 4 * 64 * 64)[..4], 5e-5, 0, "seed 1 randn(1,4,64,64)");
    }

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        int i = 0;
        foreach (var c in SamplingFixture.Load("torch_cpu_randn.json").GetProperty("cases").EnumerateArray())
            data.Add(i++, $"seed {c.GetProperty("seed").GetUInt64()} n={c.GetProperty("size").GetInt32()}");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TwoCalls_MatchTorch(int index, string label)
    {
        // tests/fixtures/sampling/torch_cpu_randn.json: torch 1.13 (AVX2 path), tools/fixtures/sampling_rng.py.
        var c = SamplingFixture.Load("torch_cpu_randn.json").GetProperty("cases")[index];
        int n = c.GetProperty("size").GetInt32();
        var generator = new TorchCpuGenerator(c.GetProperty("seed").GetUInt64());
        int worstUlps = 0;
        foreach (string call in new[] { "first", "second" })
        {
            var expected = c.GetProperty(call);
            var actual = new float[n];
            generator.NextNormal(actual);
            if (expected.TryGetProperty("values", out var values))
                worstUlps = Math.Max(worstUlps, MaxUlps(values.Floats(), actual));
            else
                PhiloxGeneratorTests.CompareDraw(expected, actual, $"{label}, {call} call", atol: 0);
        }
        // The 16-wide path uses only IEEE operations and is bit-exact; the scalar double path goes through the
        // platform's libm (log, sin, cos), which may round a double differently once in a while.
        Assert.True(worstUlps <= (n >= 16 ? 0 : 1), $"{label}: {worstUlps} ulps from torch");
        output.WriteLine($"{label}: max {worstUlps} ulps from torch");
    }

    [Fact]
    public void InterleavedScalarAndTensorPaths_MatchTorch()
    {
        // The cached second Box-Muller value of the scalar path survives a tensor-path call, as in torch.
        foreach (var s in SamplingFixture.Load("torch_cpu_randn.json").GetProperty("sequences").EnumerateArray())
        {
            var generator = new TorchCpuGenerator(s.GetProperty("seed").GetUInt64());
            var sizes = s.GetProperty("sizes").Ints();
            var draws = s.GetProperty("draws").EnumerateArray().ToArray();
            for (int k = 0; k < sizes.Length; k++)
            {
                var actual = new float[sizes[k]];
                generator.NextNormal(actual);
                Assert.True(MaxUlps(draws[k].Floats(), actual) <= 1, $"seed {s.GetProperty("seed")} draw {k} (n={sizes[k]})");
            }
        }
    }

    [Fact]
    public void OnlyTheLow32BitsOfTheSeedCount()
    {
        Assert.Equal(Draw(5, 40), Draw((1UL << 32) + 5, 40));
        Assert.NotEqual(Draw(5, 40), Draw(6, 40));
    }

    private static float[] Draw(ulong seed, int n)
    {
        var values = new float[n];
        new TorchCpuGenerator(seed).NextNormal(values);
        return values;
    }

    private static int MaxUlps(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(float.IsFinite(actual[i]), $"[{i}] is {actual[i]}");
            worst = Math.Max(worst, Math.Abs(BitConverter.SingleToInt32Bits(expected[i]) - BitConverter.SingleToInt32Bits(actual[i])));
        }
        return worst;
    }
}
