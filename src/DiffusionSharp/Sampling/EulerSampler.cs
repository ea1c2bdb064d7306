namespace DiffusionSharp.Sampling;

/// <summary>
/// Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 2 without churn): k-diffusion
/// <c>sample_euler</c> with <c>s_churn = 0</c>, as A1111 "Euler" and stable-diffusion.cpp <c>euler</c> run it.
/// <code>
/// d = (x - D(x, sigma_i)) / sigma_i;   x = x + d * (sigma_{i+1} - sigma_i)
/// </code>
/// </summary>
public sealed class EulerSampler : Sampler
{
    public override bool IsStochastic => false;

    private protected override int EvaluationsForStep(double sigma, double sigmaNext) => 1;

    private protected override void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas)
    {
        var denoised = new float[x.Length];
        for (int i = 0; i < run.Steps; i++)
        {
            run.BeginStep(i);
            double sigma = sigmas[i], dt = sigmas[i + 1] - sigma;
            run.Denoise(x, sigma, denoised);
            for (int j = 0; j < x.Length; j++)
            {
                double xj = x[j];
                double d = (xj - denoised[j]) / sigma;
                x[j] = (float)(xj + d * dt);
            }
            run.EndStep(sigmas[i + 1]);
        }
    }
}
