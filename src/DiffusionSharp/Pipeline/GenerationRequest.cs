namespace DiffusionSharp.Pipeline;

/// <summary>Which normal generator draws the initial latent and the samplers' noise.</summary>
public enum RngKind
{
    /// <summary>
    /// Philox4x32-10 as <c>torch.randn</c> on a CUDA device (the web UIs' "GPU" seed, stable-diffusion.cpp's default
    /// <c>--rng cuda</c>): the same seed draws the same noise as there.
    /// </summary>
    Cuda,
    /// <summary>PyTorch's CPU <c>torch.randn</c> (mt19937; ComfyUI, the web UIs' "CPU" source, sd.cpp <c>--rng cpu</c>).</summary>
    Cpu,
}

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
    public int BatchCount { get; init; } = 1;
    public RngKind Rng { get; init; } = RngKind.Cuda;
    /// <summary>1 = the text encoder's last layer (SD 1.x); 2 = the penultimate, as the web UIs' "Clip skip".</summary>
    public int ClipSkip { get; init; } = 1;
}
