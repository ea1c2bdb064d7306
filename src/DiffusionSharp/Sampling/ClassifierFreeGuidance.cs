namespace DiffusionSharp.Sampling;

/// <summary>Classifier-free guidance (Ho and Salimans 2022) as every SD tool applies it.</summary>
public static class ClassifierFreeGuidance
{
    /// <summary>
    /// <c>destination = uncond + scale * (cond - uncond)</c>, element by element. Being linear, it gives the same result on
    /// epsilon (diffusers) as on the denoised latent (A1111, k-diffusion). Scale 1 returns <paramref name="cond"/>; the
    /// pipeline can skip the unconditional pass then. <paramref name="destination"/> may be either input.
    /// </summary>
    public static void Combine(ReadOnlySpan<float> uncond, ReadOnlySpan<float> cond, float scale, Span<float> destination)
    {
        if (uncond.Length != cond.Length || destination.Length != cond.Length)
            throw new ArgumentException(
                $"Guidance needs equal lengths; got uncond {uncond.Length}, cond {cond.Length}, destination {destination.Length}.");
        if (!float.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The guidance scale must be finite.");
        for (int i = 0; i < destination.Length; i++)
            destination[i] = uncond[i] + scale * (cond[i] - uncond[i]);
    }
}
