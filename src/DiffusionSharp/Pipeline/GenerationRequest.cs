using DiffusionSharp.Caching;
using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Pipeline;

/// <summary>
/// One text-to-image request. Null fields take the model's defaults (SD 1.x: 512x512, 20 steps, CFG 7, euler_a,
/// discrete; the shipped model states its own).
/// </summary>
public sealed record GenerationRequest
{
    public required string Prompt { get; init; }
    /// <summary>Text for the unconditional branch of classifier-free guidance; "" when none is given.</summary>
    public string NegativePrompt { get; init; } = "";
    public int? Width { get; init; }
    public int? Height { get; init; }
    public int? Steps { get; init; }
    public double? CfgScale { get; init; }
    /// <summary>Sampler name as stable-diffusion.cpp spells it or a web-UI label ("euler_a", "Euler a", "DPM++ 2M Karras").</summary>
    public string? Sampler { get; init; }
    /// <summary>Sigma schedule: discrete (alias normal), karras, exponential.</summary>
    public string? Scheduler { get; init; }
    /// <summary>Seed of the first image; image k of a batch uses Seed + k, as the web UIs do.</summary>
    public long Seed { get; init; } = 42;
    /// <summary>Eta of ancestral/DDIM samplers; null = the sampler's default (1 for euler_a, 0 for ddim).</summary>
    public double? Eta { get; init; }
    public int BatchCount { get; init; } = 1;
    /// <summary>cuda (Philox, as torch.randn on a GPU: the web UIs' and sd.cpp's default) or cpu (torch's CPU mt19937).</summary>
    public RngType Rng { get; init; } = RngTypes.Default;
    /// <summary>1 = the text encoder's last layer (SD 1.x); 2 = the penultimate, as the web UIs' "Clip skip".</summary>
    public int ClipSkip { get; init; } = 1;
    /// <summary>Block caching: a profiled schedule (<see cref="ScheduledCaching"/>), a fixed interval
    /// (<see cref="IntervalCaching"/>), or null for none. docs/CACHING.md.</summary>
    public BlockCaching? Cache { get; init; }
}
