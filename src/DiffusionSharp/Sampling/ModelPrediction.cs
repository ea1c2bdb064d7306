namespace DiffusionSharp.Sampling;

/// <summary>What the UNet was trained to predict (diffusers <c>prediction_type</c>, LDM <c>parameterization</c>).</summary>
public enum ModelPrediction
{
    /// <summary>The added noise (SD 1.x, SD 2.x base 512): k-diffusion <c>CompVisDenoiser</c>.</summary>
    Epsilon,

    /// <summary>The velocity <c>v = sqrt(abar) eps - sqrt(1 - abar) x0</c> (SD 2.x 768): k-diffusion <c>CompVisVDenoiser</c>.</summary>
    VPrediction,
}
