using DiffusionSharp.Sampling;

namespace DiffusionSharp.Tests.Sampling;

public class NoiseScheduleTests
{
    private static readonly NoiseSchedule Sd = NoiseSchedule.StableDiffusion;

    [Fact]
    public void StableDiffusion_MatchesPublishedValues()
    {
        // research/samplers.md section 1 (double precision).
        Assert.Equal(1000, Sd.TrainSteps);
        Assert.Equal(0.99915, Sd.AlphasCumprod[0], 12);
        Assert.Equal(0.0046600985, Sd.AlphasCumprod[999], 10);
        Assert.Equal(0.029167, Sd.SigmaMin, 6);
        Assert.Equal(14.614641, Sd.SigmaMax, 6);
    }

    [Fact]
    public void ScaledLinear_MatchesPyTorch()
    {
        var f = SamplingFixture.Load("schedules.json").GetProperty("scaled_linear");
        var indices = f.GetProperty("indices").Ints();
        var expectedAbar = f.GetProperty("alphas_cumprod").Doubles();
        var expectedSigmas = f.GetProperty("sigmas").Doubles();
        var schedule = NoiseSchedule.ScaledLinear(f.GetProperty("beta_start").GetDouble(), f.GetProperty("beta_end").GetDouble(),
            f.GetProperty("train_steps").GetInt32());
        SamplingFixture.AssertClose(expectedAbar, indices.Select(i => schedule.AlphasCumprod[i]).ToArray(), 0, 1e-12, "alphas_cumprod");
        SamplingFixture.AssertClose(expectedSigmas, indices.Select(i => schedule.Sigmas[i]).ToArray(), 0, 1e-12, "sigmas");
        Assert.Equal(f.GetProperty("sigma_min").GetDouble(), schedule.SigmaMin, 1e-15);
        Assert.Equal(f.GetProperty("sigma_max").GetDouble(), schedule.SigmaMax, 1e-12);
    }

    [Fact]
    public void Linear_MatchesPyTorch()
    {
        var f = SamplingFixture.Load("schedules.json").GetProperty("linear");
        var indices = f.GetProperty("indices").Ints();
        var schedule = NoiseSchedule.Linear(f.GetProperty("beta_start").GetDouble(), f.GetProperty("beta_end").GetDouble(),
            f.GetProperty("train_steps").GetInt32());
        SamplingFixture.AssertClose(f.GetProperty("alphas_cumprod").Doubles(), indices.Select(i => schedule.AlphasCumprod[i]).ToArray(),
            0, 1e-12, "alphas_cumprod");
    }

    [Fact]
    public void SigmaToT_MatchesKDiffusion()
    {
        foreach (var pair in SamplingFixture.Load("schedules.json").GetProperty("scaled_linear").GetProperty("sigma_to_t").EnumerateArray())
        {
            double sigma = pair[0].GetDouble(), expected = pair[1].GetDouble();
            Assert.True(Math.Abs(Sd.SigmaToT(sigma) - expected) <= 1e-9, $"sigma_to_t({sigma}) = {Sd.SigmaToT(sigma)}, expected {expected}");
        }
    }

    [Fact]
    public void TToSigma_MatchesKDiffusion()
    {
        foreach (var pair in SamplingFixture.Load("schedules.json").GetProperty("scaled_linear").GetProperty("t_to_sigma").EnumerateArray())
        {
            double t = pair[0].GetDouble(), expected = pair[1].GetDouble();
            Assert.True(Math.Abs(Sd.TToSigma(t) - expected) <= 1e-12 * expected, $"t_to_sigma({t}) = {Sd.TToSigma(t)}, expected {expected}");
        }
    }

    [Fact]
    public void SigmaToT_InvertsTheTable_AndTToSigma()
    {
        for (int t = 0; t < Sd.TrainSteps; t++)
            Assert.Equal(t, Sd.SigmaToT(Sd.Sigmas[t]));
        for (double t = 0; t <= 999; t += 7.37)
            Assert.Equal(t, Sd.SigmaToT(Sd.TToSigma(t)), 1e-9);
        Assert.Equal(0, Sd.SigmaToT(0));
        Assert.Equal(0, Sd.SigmaToT(Sd.SigmaMin / 2));
        Assert.Equal(999, Sd.SigmaToT(Sd.SigmaMax * 2));
    }

    [Fact]
    public void FromAlphasCumprod_ReproducesTheSchedule()
    {
        var copy = NoiseSchedule.FromAlphasCumprod(Sd.AlphasCumprod);
        Assert.True(copy.Sigmas.SequenceEqual(Sd.Sigmas));
    }

    [Theory]
    [InlineData(new[] { 0.9 }, "at least 2")]
    [InlineData(new[] { 0.9, 0.0 }, "alphas_cumprod[1]")]
    [InlineData(new[] { 1.0, 0.5 }, "alphas_cumprod[0]")]
    [InlineData(new[] { 0.9, double.NaN }, "alphas_cumprod[1]")]
    [InlineData(new[] { 0.9, 0.5, 0.5 }, "strictly decrease")]
    [InlineData(new[] { 0.5, 0.9 }, "strictly decrease")]
    public void FromAlphasCumprod_RejectsBadTables(double[] table, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => NoiseSchedule.FromAlphasCumprod(table));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Factories_RejectBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.ScaledLinear(trainSteps: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.ScaledLinear(betaStart: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.Linear(betaEnd: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.Linear(betaStart: double.NaN));
    }

    [Theory]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void SigmaToT_RejectsInvalidSigmas(double sigma) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Sd.SigmaToT(sigma));

    [Theory]
    [InlineData(-0.5)]
    [InlineData(999.5)]
    [InlineData(double.NaN)]
    public void TToSigma_RejectsTimestepsOutsideTheTable(double t) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Sd.TToSigma(t));
}
