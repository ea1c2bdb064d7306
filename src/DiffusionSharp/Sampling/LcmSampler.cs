namespace DiffusionSharp.Sampling;

/// <summary>
/// The latent consistency model sampler in k-diffusion form (A1111 <c>sample_lcm</c>, stable-diffusion.cpp
/// <c>sample_lcm</c>): jump to the denoised estimate, then re-noise to the next level with fresh noise.
/// <code>
/// x = D(x, sigma_i);   x = x + sigma_{i+1} * randn       (no noise after the last step)
/// </code>
/// Meant for LCM-distilled UNets and LCM-LoRA at 2-8 steps and CFG about 1-2, on the <see cref="Scheduler.Lcm"/>
/// spacing. (A1111 additionally swaps in its own LCM denoiser with the 50-step table and boundary scalings; this
/// sampler uses the plain <see cref="Denoiser"/>, as stable-diffusion.cpp does.)
/// </summary>
public sealed class LcmSampler : Sampler
{
    public override bool IsStochastic => true;

    private protected override int EvaluationsForStep(double sigma, double sigmaNext) => 1;

    private protected override void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas)
    {
        var denoised = new float[x.Length];
        for (int i = 0; i < run.Steps; i++)
        {
            run.BeginStep(i);
            run.Denoise(x, sigmas[i], denoised);
            denoised.CopyTo(x);
            if (sigmas[i + 1] > 0)
                run.AddNoise(x, sigmas[i + 1]);
            run.EndStep(sigmas[i + 1]);
        }
    }
}
