using DiffusionSharp.Caching;
using DiffusionSharp.Evaluation;
using DiffusionSharp.IO;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Tests.IO;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Pipeline;

namespace DiffusionSharp.Tests.Caching;

/// <summary>
/// Profiling: the change curve is the relative L1 change of each block's residual, checked against the residuals a
/// capturing hook sees; the profiler derives one schedule per delta and fits corrections for exactly the reused
/// evaluations; <c>--cache auto</c> stores its schedule and finds it again.
/// </summary>
public class ProfilingTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    [Fact]
    public void The_change_curve_is_the_relative_l1_change_of_the_residual()
    {
        var model = models.Sd15;
        var unet = model.Unet;
        var recorder = new ChangeCurveRecorder();
        var run = recorder.Prepare(CacheTestModels.DirectTarget(model, evaluations: 3, batch: 2));
        var watched = unet.HookedBlocks.Single(b => b.Key == "mid_block.attentions.0");
        var (sample, context, _) = CacheTestModels.Inputs(unet, 2, seed: 9);
        using (sample)
        using (context)
        using (var session = run.StartImage())
        {
            var hook = new CapturingHook(session, watched.Module);
            float[][] t = [[900, 900], [900, 900], [400, 400]];
            for (int e = 0; e < 3; e++)
            {
                session.BeginEvaluation(e);
                unet.Forward(sample, t[e], context, default, hook).Dispose();
            }
            var curves = recorder.Curves();
            var r = hook.Seen.Select(s => s.Output.Zip(s.Skip, (o, k) => (double)o - k).ToArray()).ToArray();
            int per = r[0].Length / 2;
            double Expected(int e) => Enumerable.Range(0, 2).Average(item =>
                Enumerable.Range(item * per, per).Sum(i => Math.Abs(r[e][i] - r[e - 1][i])) / Enumerable.Range(item * per, per).Sum(i => Math.Abs(r[e][i])));
            Assert.True(double.IsNaN(curves.Mean[watched.Index][0]));
            Assert.Equal(0, curves.Mean[watched.Index][1]); // same input twice: no change
            Assert.Equal(Expected(2), curves.Mean[watched.Index][2], 1e-9);
            Assert.True(curves.Mean[watched.Index][2] > 0);
            Assert.Equal(1, curves.Samples);
        }
    }

    [Fact]
    public void Profiling_derives_a_schedule_per_delta_with_corrections_where_blocks_are_reused()
    {
        var pipeline = new TextToImagePipeline(models.Mobile);
        var template = CacheTestModels.Request("ddim_trailing", 6);
        SeededPrompt[] prompts = [new("a red apple on a blue background", 1), new("rocket on a black background", 2)];
        var profile = CacheProfiler.Profile(pipeline, template, prompts, [0.0, 0.5, 1e9], fitScaleShift: true);
        Assert.Equal(2, profile.Curves.Samples);
        Assert.Equal(models.Mobile.Unet.HookedBlocks.Select(b => b.Key), profile.Curves.Keys);
        Assert.All(profile.Curves.Mean, m => Assert.All(m.Skip(1), v => Assert.True(v > 0 && double.IsFinite(v))));

        var (everyStep, some, firstOnly) = (profile.Schedules[0], profile.Schedules[1], profile.Schedules[2]);
        Assert.Equal(0, everyStep.SkippedBlockEvaluations);
        Assert.All(firstOnly.Blocks, b => Assert.Equal([true, false, false, false, false, false], b.Recompute));
        Assert.InRange(some.SkippedBlockEvaluations, 1, firstOnly.SkippedBlockEvaluations - 1);
        foreach (var schedule in profile.Schedules)
        {
            Assert.Equal(pipeline.CacheTargetFor(template).ScheduleTarget(), schedule.Target);
            int size = pipeline.CacheTargetFor(template).LatentWidth * models.Mobile.LatentScale;
            Assert.Equal(new ProfileConditions(2, size, size, 4), schedule.Profile);
            foreach (var block in schedule.Blocks)
                for (int e = 0; e < block.Recompute.Length; e++)
                {
                    Assert.Equal(!block.Recompute[e], block.Corrections[e] is not null);
                    if (block.Corrections[e] is { } c) Assert.All(c.Scale.Concat(c.Shift), v => Assert.True(float.IsFinite(v)));
                }
        }
        var image = Assert.Single(pipeline.Generate(template with { Cache = new ScheduledCaching(some) }).Images);
        Assert.Equal(some.SkippedBlockEvaluations, image.Cache!.BlockSkips);
    }

    [Fact]
    public void Auto_stores_the_schedule_beside_the_model_and_finds_it_again()
    {
        using var scratch = new TempFolder();
        string folder = scratch.File("tiny-mobile");
        DiffusionSharp.Tests.Pipeline.TinyPipelineModels.CopyFolder(TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile), folder);
        using var model = DiffusionSharp.Models.Checkpoints.ModelLoader.Load(folder);
        var pipeline = new TextToImagePipeline(model);
        var request = CacheTestModels.Request("ddim_trailing", 3);
        string userFolder = scratch.File("user-cache");

        var (first, path, profiled) = CacheProfiler.GetOrProfile(pipeline, request, 0.2, userFolder);
        Assert.True(profiled);
        Assert.Equal(Path.Combine(folder, "cache-schedules", "ddim_trailing.simple.3steps.delta0.2.json"), path);
        Assert.Equal(0.2, first.Delta);
        Assert.Equal(BuiltInPrompts.All.Count, first.Profile!.Prompts);

        var (again, samePath, profiledAgain) = CacheProfiler.GetOrProfile(pipeline, request, 0.2, userFolder);
        Assert.False(profiledAgain);
        Assert.Equal(path, samePath);
        Assert.Equal(CacheScheduleFile.ToJson(first), CacheScheduleFile.ToJson(again));

        File.WriteAllText(path, "{ damaged");
        var (_, _, reprofiled) = CacheProfiler.GetOrProfile(pipeline, request, 0.2, userFolder);
        Assert.True(reprofiled);
        Assert.Equal(CacheScheduleFile.ToJson(first), File.ReadAllText(path));
    }

    [Fact]
    public void Auto_falls_back_to_the_user_cache_folder_when_the_model_folder_cannot_take_it()
    {
        using var scratch = new TempFolder();
        string folder = scratch.File("tiny-mobile");
        DiffusionSharp.Tests.Pipeline.TinyPipelineModels.CopyFolder(TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile), folder);
        File.WriteAllText(Path.Combine(folder, "cache-schedules"), "a file where the folder would go");
        using var model = DiffusionSharp.Models.Checkpoints.ModelLoader.Load(folder);
        string userFolder = scratch.File("user-cache");
        var (_, path, profiled) = CacheProfiler.GetOrProfile(new TextToImagePipeline(model), CacheTestModels.Request("ddim_trailing", 2), 0.1, userFolder);
        Assert.True(profiled);
        Assert.Equal(Path.Combine(userFolder, "ddim_trailing.simple.2steps.delta0.1.json"), path);
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void The_user_cache_folder_is_named_by_model_and_hash()
    {
        var target = new ScheduleTarget("my model/v1", "abcdef0123", "euler", "discrete", 20, 20);
        string folder = CacheScheduleStore.UserFolder(target);
        Assert.EndsWith(Path.Combine("diffusionsharp", "cache-schedules", "my_model_v1-abcdef0123"), folder);
    }
}
