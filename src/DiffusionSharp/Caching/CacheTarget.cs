using DiffusionSharp.Models;
using DiffusionSharp.Models.Unet;

namespace DiffusionSharp.Caching;

/// <summary>
/// The run a caching policy is prepared for: the model, the sampler and spacing by CLI name, the step count, the UNet
/// calls per image (<paramref name="Evaluations"/>), the UNet batch (2 with classifier-free guidance: the unconditional
/// and conditional branch, each cached separately), and the latent size and text length that fix every block's shape.
/// </summary>
public sealed record CacheTarget(StableDiffusionModel Model, string Sampler, string Scheduler, int Steps, int Evaluations, int Batch,
    int LatentHeight, int LatentWidth, int ContextTokens)
{
    public Unet2DConditionModel Unet => Model.Unet;

    /// <summary>The schedule target of this run (computes the model fingerprint on first use).</summary>
    public ScheduleTarget ScheduleTarget() => new(Model.Name, ModelFingerprint.Of(Model), Sampler, Scheduler, Steps, Evaluations);
}
