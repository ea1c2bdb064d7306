using DiffusionSharp.Caching;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Tests.Pipeline;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Caching;

/// <summary>A schedule used with another model, sampler, spacing, step count or block layout is refused with a clear error.</summary>
public class ScheduleValidationTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    private CacheScheduleException Refusal(CacheSchedule schedule, GenerationRequest request, TextToImagePipeline? pipeline = null)
    {
        pipeline ??= new TextToImagePipeline(models.Sd15);
        return Assert.Throws<CacheScheduleException>(() => pipeline.Generate(request with { Cache = new ScheduledCaching(schedule, source: "s.json") }));
    }

    private CacheSchedule Valid(GenerationRequest request) => CacheTestModels.Schedule(models.Sd15, request, (_, e) => e % 2 == 0);

    [Fact]
    public void The_matching_run_is_accepted()
    {
        var request = CacheTestModels.Request("euler", 4);
        var image = Assert.Single(new TextToImagePipeline(models.Sd15).Generate(request with { Cache = new ScheduledCaching(Valid(request)) }).Images);
        Assert.Equal(2 * models.Sd15.Unet.HookedBlocks.Count, image.Cache!.BlockSkips);
    }

    [Fact]
    public void Another_sampler_spacing_or_step_count_is_refused()
    {
        var request = CacheTestModels.Request("euler", 4);
        var schedule = Valid(request);
        Assert.Contains("made for the euler sampler, not dpm++2m", Refusal(schedule, request with { Sampler = "dpm++2m" }).Message);
        Assert.Contains("made for the discrete schedule, not karras", Refusal(schedule, request with { Scheduler = "karras" }).Message);
        Assert.Contains("made for 4 steps, not 5", Refusal(schedule, request with { Steps = 5 }).Message);
        var e = Refusal(schedule with { Target = schedule.Target with { Evaluations = 5 } }, request);
        Assert.Contains("5 UNet calls per image; this run makes 4", e.Message);
        Assert.Contains("s.json", e.Message);
    }

    [Fact]
    public void Another_model_is_refused_by_its_hash()
    {
        var request = CacheTestModels.Request("ddim_trailing", 4);
        var forSd15 = Valid(request);
        var e = Refusal(forSd15, request, new TextToImagePipeline(models.Mobile));
        Assert.Contains($"model '{models.Sd15.Name}' (hash {ModelFingerprint.Of(models.Sd15)})", e.Message);
        Assert.Contains($"not '{models.Mobile.Name}' (hash {ModelFingerprint.Of(models.Mobile)})", e.Message);
        Assert.NotEqual(ModelFingerprint.Of(models.Sd15), ModelFingerprint.Of(models.Mobile));
    }

    [Fact]
    public void A_missing_extra_or_reshaped_block_is_refused()
    {
        var request = CacheTestModels.Request("euler", 4);
        var schedule = Valid(request);
        var missing = schedule with { Blocks = schedule.Blocks.Skip(1).ToArray() };
        Assert.Contains("has no entry for the UNet block 'down_blocks.0.resnets.0'", Refusal(missing, request).Message);
        var extra = schedule with { Blocks = [.. schedule.Blocks, schedule.Blocks[0] with { Key = "down_blocks.9.resnets.0" }] };
        Assert.Contains("names block 'down_blocks.9.resnets.0', which this UNet does not have", Refusal(extra, request).Message);
        var reshaped = schedule with { Blocks = [schedule.Blocks[0] with { Channels = 17 }, .. schedule.Blocks.Skip(1)] };
        Assert.Contains("has 17 channels in the schedule and 16 in the UNet", Refusal(reshaped, request).Message);
    }

    [Fact]
    public void The_folder_fingerprint_covers_the_unet_files_only()
    {
        // tiny-mobile's pipeline copy differs from the fixture folder in diffusionsharp.json, not in unet/.
        using var fixtureCopy = DiffusionSharp.Models.Checkpoints.ModelLoader.Load(TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile));
        Assert.Equal(ModelFingerprint.Of(models.Mobile), ModelFingerprint.Of(fixtureCopy));
        Assert.Matches("^[0-9a-f]{10}$", ModelFingerprint.Of(models.Mobile));
    }
}
