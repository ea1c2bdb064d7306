namespace DiffusionSharp.Sampling;

/// <summary>
/// What every sampler calls: an estimate of the clean latent from a latent at noise level sigma (k-diffusion's
/// <c>model(x, sigma)</c>). <see cref="Denoiser"/> implements it over a UNet; wrappers (inpainting blends, caches)
/// and tests implement it directly.
/// </summary>
public interface IDenoiser
{
    /// <summary>
    /// Writes the denoised estimate of <paramref name="x"/> (a latent in sigma form, <c>x = x0 + sigma * noise</c>) into
    /// <paramref name="denoised"/>, which has the same length and does not overlap <paramref name="x"/>.
    /// </summary>
    void Denoise(ReadOnlySpan<float> x, double sigma, Span<float> denoised);
}
