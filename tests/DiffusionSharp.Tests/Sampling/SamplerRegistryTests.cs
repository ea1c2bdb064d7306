using DiffusionSharp.Sampling;

namespace DiffusionSharp.Tests.Sampling;

public class SamplerRegistryTests
{
    [Theory]
    [InlineData("euler", "euler", null)]
    [InlineData("euler_a", "euler_a", null)]
    [InlineData("heun", "heun", null)]
    [InlineData("dpm2", "dpm2", null)]
    [InlineData("dpm++2m", "dpm++2m", null)]
    [InlineData("dpm++2s_a", "dpm++2s_a", null)]
    [InlineData("lcm", "lcm", null)]
    [InlineData("ddim", "ddim", null)]
    [InlineData("ddim_trailing", "ddim_trailing", null)]
    [InlineData("Euler a", "euler_a", null)]
    [InlineData("Euler", "euler", null)]
    [InlineData("DPM++ 2M", "dpm++2m", null)]
    [InlineData("DPM++ 2M Karras", "dpm++2m", Scheduler.Karras)]
    [InlineData("dpm++ 2m karras", "dpm++2m", Scheduler.Karras)]
    [InlineData("DPM++ 2S a Karras", "dpm++2s_a", Scheduler.Karras)]
    [InlineData("DPM2 Karras", "dpm2", Scheduler.Karras)]
    [InlineData("Euler a Exponential", "euler_a", Scheduler.Exponential)]
    [InlineData("euler_a karras", "euler_a", Scheduler.Karras)]
    [InlineData("k_euler_a", "euler_a", null)]
    [InlineData("k_euler_ancestral", "euler_a", null)]
    [InlineData("k_dpmpp_2m_ka", "dpm++2m", Scheduler.Karras)]
    [InlineData("k_dpm_2_ka", "dpm2", Scheduler.Karras)]
    [InlineData("k_lcm", "lcm", null)]
    [InlineData("euler_ancestral", "euler_a", null)]
    [InlineData("dpmpp_2m", "dpm++2m", null)]
    [InlineData("dpmpp_2s_ancestral", "dpm++2s_a", null)]
    [InlineData("DDIM", "ddim", null)]
    [InlineData("LCM", "lcm", null)]
    [InlineData("  EULER_A  ", "euler_a", null)]
    public void Parse_AcceptsNamesLabelsAndAliases(string name, string expected, Scheduler? implied)
    {
        var selection = SamplerRegistry.Parse(name);
        Assert.Equal(expected, selection.Sampler.Name);
        Assert.Equal(implied, selection.ImpliedScheduler);
    }

    [Theory]
    [InlineData("DPM++ 2M SDE")]
    [InlineData("DPM++ 2M SDE Karras")]
    [InlineData("DPM2 a")]
    [InlineData("k_euler_ka_ka")]
    [InlineData("Karras")]
    [InlineData("")]
    public void Parse_RejectsUnknownSamplers_ListingTheValidOnes(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => SamplerRegistry.Parse(name));
        foreach (var info in SamplerRegistry.All)
            Assert.Contains(info.Name, e.Message);
        Assert.Contains("DPM++ 2M", e.Message);
        Assert.False(SamplerRegistry.TryParse(name, out _));
    }

    [Fact]
    public void ResolveScheduler_PrefersExplicitThenImpliedThenDefault()
    {
        var karrasLabel = SamplerRegistry.Parse("DPM++ 2M Karras");
        Assert.Equal(Scheduler.Karras, karrasLabel.ResolveScheduler());
        Assert.Equal(Scheduler.Exponential, karrasLabel.ResolveScheduler(Scheduler.Exponential));
        Assert.Equal(Scheduler.Discrete, SamplerRegistry.Parse("dpm++2m").ResolveScheduler());
        Assert.Equal(Scheduler.DdimUniform, SamplerRegistry.Parse("ddim").ResolveScheduler());
        Assert.Equal(Scheduler.Karras, SamplerRegistry.Parse("ddim").ResolveScheduler(Scheduler.Karras));
        Assert.Equal(Scheduler.Simple, SamplerRegistry.Parse("ddim_trailing").ResolveScheduler());
        Assert.Equal(Scheduler.Lcm, SamplerRegistry.Parse("lcm").ResolveScheduler());
    }

    [Fact]
    public void Infotext_UsesTheModernA1111Form()
    {
        Assert.Equal("Sampler: DPM++ 2M, Schedule type: Karras", SamplerRegistry.Parse("dpm++2m").Sampler.Infotext(Scheduler.Karras).ToString());
        Assert.Equal("Sampler: Euler a, Schedule type: Uniform", SamplerRegistry.Default.Infotext(Scheduler.Discrete).ToString());
        var trailing = SamplerRegistry.Parse("ddim_trailing").Sampler.Infotext(Scheduler.Simple);
        Assert.Equal(("DDIM", "Simple"), (trailing.Sampler, trailing.ScheduleType));
    }

    [Fact]
    public void InfotextFields_ParseBackToTheSameAlgorithmAndSpacing()
    {
        foreach (var info in SamplerRegistry.All)
            foreach (var scheduler in Enum.GetValues<Scheduler>())
            {
                var text = info.Infotext(scheduler);
                var back = SamplerRegistry.Parse(text.Sampler + " " + text.ScheduleType);
                Assert.Equal(info.Create().GetType(), back.Sampler.Create().GetType());
                Assert.Equal(scheduler, back.ResolveScheduler());
            }
    }

    [Fact]
    public void Create_BuildsTheSamplerWithItsDefaults()
    {
        Assert.Same(SamplerRegistry.Parse("euler_a").Sampler, SamplerRegistry.Default);
        Assert.Equal(1, Assert.IsType<EulerAncestralSampler>(SamplerRegistry.Parse("euler_a").Sampler.Create()).Eta);
        Assert.Equal(1, Assert.IsType<DpmPP2SAncestralSampler>(SamplerRegistry.Parse("dpm++2s_a").Sampler.Create()).Eta);
        Assert.Equal(0, Assert.IsType<DdimSampler>(SamplerRegistry.Parse("ddim").Sampler.Create()).Eta);
        Assert.Equal(0.3, Assert.IsType<DdimSampler>(SamplerRegistry.Parse("ddim_trailing").Sampler.Create(0.3)).Eta);
        Assert.IsType<EulerSampler>(SamplerRegistry.Parse("euler").Sampler.Create());
        Assert.IsType<HeunSampler>(SamplerRegistry.Parse("heun").Sampler.Create());
        Assert.IsType<Dpm2Sampler>(SamplerRegistry.Parse("dpm2").Sampler.Create());
        Assert.IsType<DpmPP2MSampler>(SamplerRegistry.Parse("dpm++2m").Sampler.Create());
        Assert.IsType<LcmSampler>(SamplerRegistry.Parse("lcm").Sampler.Create());
    }

    [Fact]
    public void Create_RefusesAnEtaForSamplersWithoutOne()
    {
        var e = Assert.Throws<ArgumentException>(() => SamplerRegistry.Parse("dpm++2m").Sampler.Create(0.5));
        Assert.Contains("dpm++2m", e.Message);
    }

    [Fact]
    public void NamesAndAliases_AreUnique()
    {
        var names = SamplerRegistry.All.SelectMany(s => s.Aliases.Prepend(s.Name)).Select(n => n.ToLowerInvariant()).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }
}
