using DiffusionSharp.Models;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Cli.Bench;

/// <summary>
/// The inputs of a benchmarked UNet step, the same in every benchmark so their steps compare: a latent [B, h, w, C] of
/// uniform values in [-1, 1) (seed 42), timestep 999 for every image and, for guidance-embedded models, the guidance
/// input of the CFG scale.
/// </summary>
internal sealed class UnetStepInputs : IDisposable
{
    private readonly Tensor _sample;
    private readonly float[] _timesteps;
    private readonly float[] _guidance;

    public UnetStepInputs(StableDiffusionModel model, int batch, int latentHeight, int latentWidth, double cfgScale)
    {
        _sample = new Tensor(batch, latentHeight, latentWidth, model.Unet.Config.InChannels);   // [B, h, w, C]
        var random = new Random(42);
        foreach (ref float v in _sample.Span) v = (float)(random.NextDouble() * 2 - 1);
        _timesteps = Enumerable.Repeat(999f, batch).ToArray();
        float guidanceInput = (float)(cfgScale - model.Defaults.GuidanceEmbeddingOffset);
        _guidance = model.HasGuidanceEmbedding ? Enumerable.Repeat(guidanceInput, batch).ToArray() : [];
    }

    /// <summary>One evaluation of <paramref name="unet"/> on these inputs and <paramref name="context"/> [B, T, C]; its output is disposed.</summary>
    public void Step(Unet2DConditionModel unet, Tensor context) => unet.Forward(_sample, _timesteps, context, _guidance).Dispose(); // [B, h, w, C]

    public void Dispose() => _sample.Dispose();
}
