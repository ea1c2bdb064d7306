namespace DiffusionSharp.Models.Checkpoints;

/// <summary>Latent diffusion model families the loader can recognise (not all of which it can run).</summary>
public enum ModelFamily
{
    /// <summary>Stable Diffusion 1.x: CLIP ViT-L/14 text encoder, 768-wide cross-attention. Supported.</summary>
    StableDiffusion1,
    /// <summary>A MobileDiffusion-style UNet configuration (diffusers folder with our config keys). Supported.</summary>
    MobileDiffusion,
    StableDiffusion2,
    StableDiffusionXL,
    StableDiffusionXLRefiner,
    StableDiffusion3,
    Flux,
    Unknown,
}

/// <summary>What a checkpoint was recognised as, and why.</summary>
/// <param name="UnetInChannels">4 for text-to-image; 9 for inpainting and 8 for instruct-pix2pix UNets.</param>
/// <param name="Evidence">The keys and shapes the decision rests on, for error messages and <c>diffusion info</c>.</param>
public sealed record ModelFamilyInfo(ModelFamily Family, int UnetInChannels, string Evidence)
{
    /// <summary>Text-to-image with this engine: SD 1.x with a 4-channel UNet, or our MobileDiffusion configurations.</summary>
    public bool IsSupported => (Family == ModelFamily.StableDiffusion1 && UnetInChannels == 4) || Family == ModelFamily.MobileDiffusion;

    public string DisplayName => Family switch
    {
        ModelFamily.StableDiffusion1 => "Stable Diffusion 1.x",
        ModelFamily.MobileDiffusion => "MobileDiffusion-style",
        ModelFamily.StableDiffusion2 => "Stable Diffusion 2.x",
        ModelFamily.StableDiffusionXL => "Stable Diffusion XL",
        ModelFamily.StableDiffusionXLRefiner => "Stable Diffusion XL refiner",
        ModelFamily.StableDiffusion3 => "Stable Diffusion 3",
        ModelFamily.Flux => "FLUX",
        _ => "unknown",
    } + (UnetInChannels switch { 9 => " (inpainting)", 8 => " (instruct-pix2pix)", _ => "" });
}
