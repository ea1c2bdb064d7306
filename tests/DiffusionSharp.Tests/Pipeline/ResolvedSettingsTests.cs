using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling;

namespace DiffusionSharp.Tests.Pipeline;

/// <summary>Request fields left unset take the model's defaults; bad ones are refused naming the CLI option, in one line.</summary>
public class ResolvedSettingsTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    [Fact]
    public void Unset_fields_take_the_models_defaults()
    {
        var s = ResolvedSettings.Resolve(new GenerationRequest { Prompt = "x" }, models.Sd15);
        Assert.Equal((64, 64, 20, 7.0), (s.Width, s.Height, s.Steps, s.CfgScale));   // 64 = sample_size 8 x the VAE's factor 8
        Assert.Equal(("euler_a", Scheduler.Discrete), (s.Sampler.Name, s.Scheduler));
        var mobile = ResolvedSettings.Resolve(new GenerationRequest { Prompt = "x" }, models.Mobile);
        Assert.Equal((16, 16), (mobile.Width, mobile.Height));                      // its VAE's factor is 2
    }

    [Theory]
    [InlineData("DPM++ 2M Karras", null, Scheduler.Karras)]
    [InlineData("DPM++ 2M Karras", "exponential", Scheduler.Exponential)]
    [InlineData("ddim", null, Scheduler.DdimUniform)]
    [InlineData("ddim_trailing", null, Scheduler.Simple)]
    [InlineData("lcm", null, Scheduler.Lcm)]
    [InlineData("euler", "normal", Scheduler.Discrete)]
    public void The_schedule_is_the_explicit_one_else_the_labels_else_the_samplers(string sampler, string? scheduler, Scheduler expected)
        => Assert.Equal(expected, ResolvedSettings.Resolve(new GenerationRequest { Prompt = "x", Sampler = sampler, Scheduler = scheduler }, models.Sd15).Scheduler);

    [Theory]
    [InlineData("steps", "ddim", 1, 64, "needs at least 2 steps")]
    [InlineData("steps", "lcm", 51, 64, "at most 50 steps")]
    [InlineData("steps", "euler", 1001, 64, "Steps must be between 1 and 1000")]
    [InlineData("steps", "euler", 0, 64, "Steps must be between 1 and 1000")]
    [InlineData("width", "euler", 2, 60, "Width 60 must be a multiple of 8")]
    [InlineData("sampling-method", "euler_b", 2, 64, "Unknown sampler 'euler_b'")]
    public void Invalid_settings_name_the_option(string option, string sampler, int steps, int width, string message)
    {
        var request = new GenerationRequest { Prompt = "x", Sampler = sampler, Steps = steps, Width = width };
        var e = Assert.Throws<InvalidSettingException>(() => ResolvedSettings.Resolve(request, models.Sd15));
        Assert.Equal(option, e.ParamName);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain("Parameter", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Clip_skip_is_bounded_by_the_text_encoders_layers()
    {
        var e = Assert.Throws<InvalidSettingException>(() => ResolvedSettings.Resolve(new GenerationRequest { Prompt = "x", ClipSkip = 3 }, models.Sd15));
        Assert.Equal("clip-skip", e.ParamName);
        Assert.Contains("between 1 and 2", e.Message);
    }
}
