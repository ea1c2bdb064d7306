namespace DiffusionSharp.Sampling;

/// <summary>
/// k-diffusion <c>get_ancestral_step</c>: splits a step from <c>sigmaFrom</c> to <c>sigmaTo</c> into a deterministic step
/// down to <c>Down</c> and fresh noise of standard deviation <c>Up</c>, with <c>Down^2 + Up^2 = sigmaTo^2</c>:
/// <code>
/// Up   = min(sigmaTo, eta * sqrt(sigmaTo^2 (sigmaFrom^2 - sigmaTo^2) / sigmaFrom^2))
/// Down = sqrt(sigmaTo^2 - Up^2)
/// </code>
/// eta = 0 gives a deterministic step (Down = sigmaTo); eta = 1 is DDPM's posterior noise.
/// </summary>
internal static class AncestralStep
{
    public static (double Down, double Up) Get(double sigmaFrom, double sigmaTo, double eta)
    {
        if (eta == 0) return (sigmaTo, 0);
        double up = Math.Min(sigmaTo, eta * Math.Sqrt(sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) / (sigmaFrom * sigmaFrom)));
        double down = Math.Sqrt(sigmaTo * sigmaTo - up * up);
        return (down, up);
    }
}
