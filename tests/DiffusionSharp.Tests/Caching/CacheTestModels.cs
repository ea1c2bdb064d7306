using DiffusionSharp.Caching;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Tests.Caching;

/// <summary>Requests, schedules and UNet inputs for the caching tests on the tiny models.</summary>
internal static class CacheTestModels
{
    public static GenerationRequest Request(string sampler, int steps, BlockCaching? cache = null, long seed = 5) => new()
    {
        Prompt = "a red apple on a blue background",
        NegativePrompt = "blurry",
        Steps = steps,
        Sampler = sampler,
        CfgScale = 4,
        Seed = seed,
        Rng = RngType.Cpu,
        Cache = cache,
    };

    /// <summary>A schedule for <paramref name="request"/>'s run on <paramref name="model"/> with the given recompute rule.</summary>
    public static CacheSchedule Schedule(StableDiffusionModel model, GenerationRequest request, Func<HookedBlock, int, bool> recompute)
    {
        var target = new TextToImagePipeline(model).CacheTargetFor(request);
        var blocks = model.Unet.HookedBlocks.Select(b => new BlockSchedule(b.Key, b.Channels,
            Enumerable.Range(0, target.Evaluations).Select(e => e == 0 || recompute(b, e)).ToArray(), null,
            new ChannelCorrection?[target.Evaluations])).ToArray();
        return new CacheSchedule { Target = target.ScheduleTarget(), Blocks = blocks };
    }

    /// <summary>A target of <paramref name="evaluations"/> direct UNet calls at an 8x8 latent.</summary>
    public static CacheTarget DirectTarget(StableDiffusionModel model, int evaluations, int batch)
        => new(model, "euler", "discrete", evaluations, evaluations, batch, 8, 8, 77);

    /// <summary>Seeded inputs of one UNet call: sample [B, 8, 8, C], context [B, 77, Cctx], guidance for guidance-embedded UNets.</summary>
    public static (Tensor Sample, Tensor Context, float[] Guidance) Inputs(Unet2DConditionModel unet, int batch, int seed)
    {
        var random = new Random(seed);
        float Next() => (float)(random.NextDouble() * 2 - 1);
        var sample = new Tensor(batch, 8, 8, unet.Config.InChannels);
        foreach (ref float v in sample.Span) v = Next();
        var context = new Tensor(batch, 77, unet.Config.CrossAttentionDim);
        foreach (ref float v in context.Span) v = Next();
        float[] guidance = unet.Config.TimeCondProjDim is null ? [] : Enumerable.Repeat(2f, batch).ToArray();
        return (sample, context, guidance);
    }
}

/// <summary>Passes every call to an inner hook and keeps copies of what one block saw.</summary>
internal sealed class CapturingHook(IBlockHook inner, DiffusionSharp.Nn.Module watched) : IBlockHook
{
    public List<(BlockAction Action, float[] Skip, float[] Output)> Seen { get; } = [];

    private BlockAction _action;

    public BlockAction Begin(DiffusionSharp.Nn.Module block)
    {
        var action = inner.Begin(block);
        if (block == watched) _action = action;
        return action;
    }

    public void Record(DiffusionSharp.Nn.Module block, Tensor skip, Tensor output)
    {
        if (block == watched) Seen.Add((_action, skip.ToArray(), output.ToArray()));
        inner.Record(block, skip, output);
    }

    public void Reuse(DiffusionSharp.Nn.Module block, Tensor skip, Tensor output)
    {
        float[] skipBefore = skip.ToArray();
        inner.Reuse(block, skip, output);
        if (block == watched) Seen.Add((_action, skipBefore, output.ToArray()));
    }
}
