using DiffusionSharp.Caching;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Tests.Pipeline;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Caching;

/// <summary>
/// The hooks and the cache on the tiny models (tiny-sd15: classifier-free guidance, so a UNet batch of 2; tiny-mobile:
/// guidance embedded, batch 1): a schedule that runs every block is bit-identical to no cache; a skipped block outputs its
/// current input plus the residual recorded earlier, corrected per channel; the interval baseline, the statistics and the
/// memory are what the plan says.
/// </summary>
public class BlockCacheTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    public static TheoryData<string, string, int> Runs() => new()
    {
        { TinyModelFixtures.Sd15, "euler_a", 4 },
        { TinyModelFixtures.Sd15, "heun", 3 },
        { TinyModelFixtures.Mobile, "ddim_trailing", 4 },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void A_schedule_that_runs_every_block_is_bit_identical_to_no_cache(string model, string sampler, int steps)
    {
        var pipeline = new TextToImagePipeline(models[model]);
        var request = CacheTestModels.Request(sampler, steps);
        var uncached = Assert.Single(pipeline.Generate(request).Images);
        var everyStep = CacheTestModels.Schedule(models[model], request, (_, _) => true);
        foreach (var cache in new BlockCaching[] { new ScheduledCaching(everyStep), new IntervalCaching(1), new ChangeCurveRecorder() })
        {
            var cached = Assert.Single(pipeline.Generate(request with { Cache = cache }).Images);
            Assert.Equal(uncached.Latent.Values, cached.Latent.Values);
            Assert.Equal(uncached.Image.Pixels, cached.Image.Pixels);
            Assert.Equal(0, cached.Cache!.BlockSkips);
            Assert.Equal(uncached.Timings.UnetEvaluations * models[model].Unet.HookedBlocks.Count, cached.Cache.BlockRuns);
        }
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, 2)]
    [InlineData(TinyModelFixtures.Mobile, 1)]
    public void Reusing_every_block_at_the_same_input_reproduces_the_unet_output(string model, int batch)
    {
        // Each block's output is rebuilt from its input and the residual recorded one call earlier at the same input:
        // only if every hook point takes the right skip (x, or conv_shortcut(x)) does the whole UNet come out the same.
        var unet = models[model].Unet;
        var target = CacheTestModels.DirectTarget(models[model], evaluations: 2, batch);
        var plan = new CachePlan(target, unet.HookedBlocks.Select(_ => new[] { true, false }).ToArray(), null);
        var (sample, context, guidance) = CacheTestModels.Inputs(unet, batch, seed: 3);
        float[] t = Enumerable.Repeat(500f, batch).ToArray();
        using (sample)
        using (context)
        using (var session = plan.StartImage())
        {
            session.BeginEvaluation(0);
            using var computed = unet.Forward(sample, t, context, guidance, session);
            session.BeginEvaluation(1);
            using var reused = unet.Forward(sample, t, context, guidance, session);
            Assert.Equal(unet.HookedBlocks.Count, session.Statistics.BlockSkips);
            float[] expected = computed.ToArray();
            Tolerance.AssertClose(expected, reused.ToArray(), 1e-5 * expected.Max(Math.Abs), 0, $"{model} all blocks reused");
            using var plain = unet.Forward(sample, t, context, guidance);
            Assert.Equal(expected, plain.ToArray());
        }
    }

    [Fact]
    public void A_reused_residual_is_scaled_and_shifted_per_channel()
    {
        var model = models.Sd15;
        var unet = model.Unet;
        var watched = unet.HookedBlocks.Single(b => b.Key == "up_blocks.1.resnets.0"); // a resnet with conv_shortcut
        Assert.IsType<ResnetBlock2D>(watched.Module);
        int channels = watched.Channels;
        var scale = Enumerable.Range(0, channels).Select(c => 0.5f + 0.1f * c).ToArray();
        var shift = Enumerable.Range(0, channels).Select(c => 0.01f * c - 0.1f).ToArray();
        var corrections = unet.HookedBlocks.Select(b => b == watched
            ? new ChannelCorrection?[] { null, new ChannelCorrection(scale, shift) }
            : new ChannelCorrection?[2]).ToArray();
        var target = CacheTestModels.DirectTarget(model, evaluations: 2, batch: 2);
        var plan = new CachePlan(target, unet.HookedBlocks.Select(b => new[] { true, b != watched }).ToArray(), corrections);
        var (sample, context, _) = CacheTestModels.Inputs(unet, 2, seed: 4);
        using (sample)
        using (context)
        using (var session = plan.StartImage())
        {
            var hook = new CapturingHook(session, watched.Module);
            session.BeginEvaluation(0);
            unet.Forward(sample, [700f, 700f], context, default, hook).Dispose();
            session.BeginEvaluation(1);
            unet.Forward(sample, [300f, 300f], context, default, hook).Dispose();
            Assert.Equal(1, session.Statistics.BlockSkips);
            Assert.Equal([BlockAction.Record, BlockAction.Reuse], hook.Seen.Select(s => s.Action));
            var (_, skip0, out0) = hook.Seen[0];
            var (_, skip1, out1) = hook.Seen[1];
            Assert.NotEqual(skip0, skip1); // the input moved with the timestep; the residual is the recorded one
            var expected = new float[out1.Length];
            for (int i = 0; i < expected.Length; i++)
            {
                int c = i % channels;
                expected[i] = (float)(skip1[i] + scale[c] * ((double)out0[i] - skip0[i]) + shift[c]);
            }
            Tolerance.AssertClose(expected, out1, 1e-6, 1e-6, "corrected reuse");
        }
    }

    [Fact]
    public void The_interval_baseline_runs_the_shallow_layers_always_and_the_rest_every_n_evaluations()
    {
        var model = models.Sd15;
        var pipeline = new TextToImagePipeline(model);
        var request = CacheTestModels.Request("euler", 7, new IntervalCaching(3));
        var target = pipeline.CacheTargetFor(request);
        var plan = (CachePlan)new IntervalCaching(3).Prepare(target);
        string[] shallow = ["down_blocks.0.resnets.0", "down_blocks.0.attentions.0", "up_blocks.3.resnets.2", "up_blocks.3.attentions.2"];
        Assert.Equal(shallow.Order(StringComparer.Ordinal), IntervalCaching.ShallowBlocks(model.Unet).Select(m => model.Unet.HookedBlocks.Single(b => b.Module == m).Key).Order(StringComparer.Ordinal));
        var flops = model.Unet.HookedBlockFlops(target.LatentHeight, target.LatentWidth);
        long saved = 0;
        foreach (var block in model.Unet.HookedBlocks)
            for (int e = 0; e < 7; e++)
            {
                bool runs = shallow.Contains(block.Key) || e % 3 == 0;
                Assert.Equal(runs, plan.Recompute(block.Index, e));
                if (!runs) saved += 2 * flops[block.Index].Saved;
            }
        var expected = plan.Expected;
        Assert.Equal((model.Unet.HookedBlocks.Count - 4) * 4, expected.BlockSkips);
        Assert.Equal(saved, expected.FlopsSaved);
        Assert.Equal(2L * 7 * model.Unet.FlopsPerForward(8, 8), expected.Flops);

        var image = Assert.Single(pipeline.Generate(request).Images);
        Assert.Equal(expected, image.Cache);
        Assert.Contains("Block cache: interval 3, Block cache skipped: ", image.Parameters);
        Assert.Contains($"{expected.BlockSkips}/{expected.BlockEvaluations} blocks", image.Parameters);
        var uncached = Assert.Single(pipeline.Generate(request with { Cache = null }).Images);
        Assert.NotEqual(uncached.Latent.Values, image.Latent.Values);
    }

    [Fact]
    public void Memory_is_one_residual_per_reused_block_allocated_as_planned()
    {
        var model = models.Mobile;
        var request = CacheTestModels.Request("ddim_trailing", 5, new IntervalCaching(2));
        var target = new TextToImagePipeline(model).CacheTargetFor(request);
        var plan = (CachePlan)request.Cache!.Prepare(target);
        var sizes = model.Unet.LevelSizes(target.LatentHeight, target.LatentWidth);
        var shallow = IntervalCaching.ShallowBlocks(model.Unet);
        long bytes = model.Unet.HookedBlocks.Where(b => !shallow.Contains(b.Module))
            .Sum(b => (long)target.Batch * sizes[b.SizeIndex].H * sizes[b.SizeIndex].W * b.Channels * sizeof(float));
        Assert.Equal(bytes, plan.CacheBytes);
        var image = Assert.Single(new TextToImagePipeline(model).Generate(request).Images);
        Assert.Equal(bytes, image.Cache!.CacheBytes);
    }

    [Fact]
    public void Block_flops_follow_the_layer_formulas()
    {
        // tiny-sd15 at an 8x8 latent: down_blocks.0.resnets.0 is 16 -> 16 channels (two 3x3 convolutions, the time
        // projection 64 -> 16, no shortcut); up_blocks.1.resnets.0 takes 32 + 32 concatenated channels to 32 with a 1x1
        // shortcut that a skipped block still runs, at the 2x2 level.
        var unet = models.Sd15.Unet;
        var flops = unet.HookedBlockFlops(8, 8);
        var first = unet.HookedBlocks.Single(b => b.Key == "down_blocks.0.resnets.0");
        long run = 2L * (64 * 9 * 16 * 16 + 64 * 9 * 16 * 16 + 64 * 16);
        Assert.Equal((run, run), flops[first.Index]);
        var up = unet.HookedBlocks.Single(b => b.Key == "up_blocks.1.resnets.0");
        long shortcut = 2L * 4 * 64 * 32;
        long upRun = 2L * (4 * 9 * 64 * 32 + 4 * 9 * 32 * 32 + 64 * 32) + shortcut;
        Assert.Equal((upRun, upRun - shortcut), flops[up.Index]);
        Assert.True(flops.Sum(f => f.Run) < unet.FlopsPerForward(8, 8));
    }

    [Fact]
    public void Progress_reports_the_blocks_skipped_so_far()
    {
        var reports = new List<GenerationProgress>();
        var request = CacheTestModels.Request("ddim_trailing", 4, new IntervalCaching(2));
        var image = Assert.Single(new TextToImagePipeline(models.Mobile).Generate(request, new ListProgress(reports)).Images);
        var denoising = reports.Where(r => r.Stage == GenerationStage.Denoising && r.Step > 0).ToList();
        Assert.NotEmpty(denoising);
        Assert.All(denoising, r => Assert.NotNull(r.Cache));
        Assert.Equal(image.Cache!.BlockSkips, denoising[^1].Cache!.BlockSkips);
        Assert.True(denoising[0].Cache!.BlockSkips <= denoising[^1].Cache!.BlockSkips);
    }

    private sealed class ListProgress(List<GenerationProgress> reports) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => reports.Add(value);
    }
}
