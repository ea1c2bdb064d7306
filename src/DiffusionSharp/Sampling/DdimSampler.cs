namespace DiffusionSharp.Sampling;

/// <summary>
/// DDIM (Song et al. 2021) in sigma form. The DDIM update in alphas_cumprod form,
/// <code>
/// x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - s^2) eps + s z,   s^2 = eta^2 (1-abar_prev)/(1-abar) (1 - abar/abar_prev),
/// </code>
/// divided by <c>sqrt(abar_prev)</c> (the sigma-form latent is <c>x_t / sqrt(abar_t)</c>, <c>sigma^2 = (1 - abar)/abar</c>) becomes
/// <code>
/// x_next = x0 + sigma_down * eps + sigma_up * z,   eps = (x - x0) / sigma_i
/// </code>
/// with exactly k-diffusion's ancestral split (<see cref="AncestralStep"/>): <c>s / sqrt(abar_prev)</c> works out to
/// <c>eta * sqrt(sigma_{i+1}^2 (sigma_i^2 - sigma_{i+1}^2) / sigma_i^2)</c>. So DDIM with eta = 0 is an Euler step, and
/// with eta it is Euler-ancestral with that eta (stable-diffusion.cpp runs its <c>ddim_trailing</c> as
/// <c>sample_euler_ancestral</c> for this reason). What makes "DDIM" is the timestep list: <c>ddim</c> defaults to
/// <see cref="Scheduler.DdimUniform"/>, <c>ddim_trailing</c> to <see cref="Scheduler.Simple"/>; any other spacing works.
/// Noise is drawn only when eta &gt; 0, once per step that ends above sigma 0.
/// </summary>
public sealed class DdimSampler : Sampler
{
    /// <param name="eta">0 (A1111's <c>eta_ddim</c> default, sd.cpp's for <c>ddim_trailing</c>) is deterministic DDIM; 1 is DDPM-like.</param>
    public DdimSampler(double eta = 0)
    {
        CheckEta(eta, nameof(eta));
        Eta = eta;
    }

    public double Eta { get; }

    public override bool IsStochastic => Eta > 0;

    private protected override int EvaluationsForStep(double sigma, double sigmaNext) => 1;

    private protected override void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas)
    {
        var denoised = new float[x.Length];
        for (int i = 0; i < run.Steps; i++)
        {
            run.BeginStep(i);
            double sigma = sigmas[i];
            run.Denoise(x, sigma, denoised);
            var (sigmaDown, sigmaUp) = AncestralStep.Get(sigma, sigmas[i + 1], Eta);
            for (int j = 0; j < x.Length; j++)
            {
                double x0 = denoised[j];
                double eps = (x[j] - x0) / sigma;
                x[j] = (float)(x0 + sigmaDown * eps);
            }
            if (sigmaUp > 0)
                run.AddNoise(x, sigmaUp);
            run.EndStep(sigmas[i + 1]);
        }
    }
}
