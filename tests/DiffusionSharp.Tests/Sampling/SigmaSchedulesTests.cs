using DiffusionSharp.Sampling;

namespace DiffusionSharp.Tests.Sampling;

public class SigmaSchedulesTests
{
    private static readonly NoiseSchedule Sd = NoiseSchedule.StableDiffusion;

    public static TheoryData<string, int> FixtureSpacings()
    {
        var data = new TheoryData<string, int>();
        foreach (var e in SamplingFixture.Load("schedules.json").GetProperty("spacings").EnumerateArray())
            data.Add(e.GetProperty("spacing").GetString()!, e.GetProperty("steps").GetInt32());
        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureSpacings))]
    public void Spacing_MatchesReference(string spacing, int steps)
    {
        var expected = SamplingFixture.Load("schedules.json").GetProperty("spacings").EnumerateArray()
            .Single(e => e.GetProperty("spacing").GetString() == spacing && e.GetProperty("steps").GetInt32() == steps)
            .GetProperty("sigmas").Doubles();
        var actual = SigmaSchedules.Create(SchedulerNames.Parse(spacing), Sd, steps);
        SamplingFixture.AssertClose(expected, actual, 1e-15, 1e-12, $"{spacing} N={steps}");
    }

    [Fact]
    public void DiscreteAndKarras_MatchPublishedTwentyStepLists()
    {
        // research/samplers.md section 2, N = 20 (4 decimals).
        var discrete = SigmaSchedules.Discrete(Sd, 20);
        SamplingFixture.AssertClose([14.6146, 10.7468, 8.0815, 6.2049], discrete[..4], 5e-5, 0, "discrete head");
        SamplingFixture.AssertClose([0.3555, 0.2322, 0.0292, 0], discrete[^4..], 5e-5, 0, "discrete tail");
        var karras = SigmaSchedules.Karras(Sd, 20);
        SamplingFixture.AssertClose([14.6146, 11.7254, 9.3402, 7.3836], karras[..4], 5e-5, 0, "karras head");
        SamplingFixture.AssertClose([0.0779, 0.0485, 0.0292, 0], karras[^4..], 5e-5, 0, "karras tail");
    }

    [Fact]
    public void IntegerSpacings_UseThePublishedTimesteps()
    {
        // Trailing 999, 949, ..., 49; A1111 DDIM 951, 901, ..., 1; LCM (N = 4) 999, 759, 499, 259.
        Assert.Equal(Enumerable.Range(0, 20).Select(k => Sd.Sigmas[999 - 50 * k]).Append(0), SigmaSchedules.Simple(Sd, 20));
        Assert.Equal(Enumerable.Range(0, 20).Select(k => Sd.Sigmas[951 - 50 * k]).Append(0), SigmaSchedules.DdimUniform(Sd, 20));
        Assert.Equal(new[] { 999, 759, 499, 259 }.Select(t => Sd.Sigmas[t]).Append(0), SigmaSchedules.Lcm(Sd, 4));
    }

    [Fact]
    public void DdimUniform_TakesA1111sStepCount()
    {
        Assert.Equal(31 + 1, SigmaSchedules.DdimUniform(Sd, 30).Length); // c = 33: timesteps 1, 34, ..., 991
        Assert.Equal(999 + 1, SigmaSchedules.DdimUniform(Sd, 1000).Length);
    }

    [Theory]
    [InlineData(Scheduler.Discrete)]
    [InlineData(Scheduler.Karras)]
    [InlineData(Scheduler.Exponential)]
    [InlineData(Scheduler.Simple)]
    [InlineData(Scheduler.Lcm)]
    public void OneStep_GoesFromSigmaMaxToZero(Scheduler scheduler)
    {
        var sigmas = SigmaSchedules.Create(scheduler, Sd, 1);
        Assert.Equal(2, sigmas.Length);
        Assert.Equal(Sd.SigmaMax, sigmas[0], 1e-12);
        Assert.Equal(0, sigmas[1]);
    }

    [Theory]
    [InlineData(Scheduler.Discrete)]
    [InlineData(Scheduler.Karras)]
    [InlineData(Scheduler.Exponential)]
    [InlineData(Scheduler.Simple)]
    [InlineData(Scheduler.DdimUniform)]
    [InlineData(Scheduler.Lcm)]
    public void EverySpacing_IsAValidSamplingSchedule(Scheduler scheduler)
    {
        int max = scheduler == Scheduler.Lcm ? 50 : 1000;
        foreach (int steps in new[] { 2, 3, 7, 19, 20, 33, 50, max })
            SigmaSchedules.Validate(SigmaSchedules.Create(scheduler, Sd, steps), "sigmas");
    }

    [Theory]
    [InlineData(Scheduler.Discrete, 0, "discrete")]
    [InlineData(Scheduler.Discrete, 1001, "1 to 1000")]
    [InlineData(Scheduler.Karras, -3, "karras")]
    [InlineData(Scheduler.Simple, 1001, "simple")]
    [InlineData(Scheduler.Lcm, 51, "1 to 50")]
    [InlineData(Scheduler.DdimUniform, 1, "at least 2 steps")]
    public void StepCountsOutsideTheRange_AreRejected(Scheduler scheduler, int steps, string message)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SigmaSchedules.Create(scheduler, Sd, steps));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Lcm_NeedsATrainingScheduleOfWholeLcmStrides()
    {
        var odd = NoiseSchedule.ScaledLinear(trainSteps: 999);
        Assert.Throws<ArgumentException>(() => SigmaSchedules.Lcm(odd, 4));
    }

    [Theory]
    [InlineData(new[] { 1.0 }, "at least 2")]
    [InlineData(new[] { 1.0, 1.0 }, "strictly decrease")]
    [InlineData(new[] { 1.0, 2.0, 0.0 }, "strictly decrease")]
    [InlineData(new[] { 1.0, 0.0, 0.0 }, "sigmas[1]")]
    [InlineData(new[] { 1.0, -0.5 }, "sigmas[1]")]
    [InlineData(new[] { double.NaN, 0.0 }, "sigmas[0]")]
    [InlineData(new[] { double.PositiveInfinity, 0.0 }, "sigmas[0]")]
    public void Validate_NamesTheBadEntry(double[] sigmas, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => SigmaSchedules.Validate(sigmas, "sigmas"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Validate_AcceptsAPartialScheduleEndingAboveZero() =>
        SigmaSchedules.Validate([14.6, 3.0, 0.5], "sigmas");
}
