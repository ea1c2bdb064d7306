namespace DiffusionSharp.Models.Checkpoints;

/// <summary>The parts of a latent diffusion checkpoint.</summary>
public enum ModelComponent
{
    Unet,
    TextEncoder,
    Vae,
}
