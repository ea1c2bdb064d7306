using DiffusionSharp.Sampling;

namespace DiffusionSharp.Tests.Sampling;

public class SchedulerNamesTests
{
    [Theory]
    [InlineData("discrete", Scheduler.Discrete)]
    [InlineData("normal", Scheduler.Discrete)]
    [InlineData("Uniform", Scheduler.Discrete)]
    [InlineData(" KARRAS ", Scheduler.Karras)]
    [InlineData("exponential", Scheduler.Exponential)]
    [InlineData("simple", Scheduler.Simple)]
    [InlineData("ddim_uniform", Scheduler.DdimUniform)]
    [InlineData("DDIM", Scheduler.DdimUniform)]
    [InlineData("lcm", Scheduler.Lcm)]
    public void Parse_AcceptsNamesAliasesAndWebUiLabels(string name, Scheduler expected) =>
        Assert.Equal(expected, SchedulerNames.Parse(name));

    [Theory]
    [InlineData("automatic")]
    [InlineData("sgm_uniform")]
    [InlineData("")]
    public void Parse_RejectsUnknownNames_ListingTheValidOnes(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => SchedulerNames.Parse(name));
        foreach (string valid in SchedulerNames.All)
            Assert.Contains(valid, e.Message);
        Assert.False(SchedulerNames.TryParse(name, out _));
    }

    [Fact]
    public void NamesAndLabels_RoundTrip()
    {
        foreach (var scheduler in Enum.GetValues<Scheduler>())
        {
            Assert.Equal(scheduler, SchedulerNames.Parse(SchedulerNames.Name(scheduler)));
            Assert.Equal(scheduler, SchedulerNames.Parse(SchedulerNames.WebUiLabel(scheduler)));
        }
        Assert.Equal(Enum.GetValues<Scheduler>().Length, SchedulerNames.All.Distinct().Count());
    }

    [Fact]
    public void WebUiLabels_AreA1111ScheduleTypes()
    {
        Assert.Equal("Uniform", SchedulerNames.WebUiLabel(Scheduler.Discrete));
        Assert.Equal("Karras", SchedulerNames.WebUiLabel(Scheduler.Karras));
        Assert.Equal("Exponential", SchedulerNames.WebUiLabel(Scheduler.Exponential));
        Assert.Equal("Simple", SchedulerNames.WebUiLabel(Scheduler.Simple));
        Assert.Equal("DDIM", SchedulerNames.WebUiLabel(Scheduler.DdimUniform));
    }
}
