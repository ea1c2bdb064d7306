namespace DiffusionSharp.Sampling;

/// <summary>
/// Heun's second-order method (Karras et al. 2022, Algorithm 2 without churn): k-diffusion <c>sample_heun</c>,
/// A1111 "Heun", stable-diffusion.cpp <c>heun</c>. Two model evaluations per step, one on a final step to sigma 0,
/// so N steps cost 2N - 1 evaluations:
/// <code>
/// d  = (x - D(x, sigma_i)) / sigma_i;        x2 = x + d * dt,   dt = sigma_{i+1} - sigma_i
/// d2 = (x2 - D(x2, sigma_{i+1})) / sigma_{i+1};  x = x + (d + d2) / 2 * dt      (Euler when sigma_{i+1} = 0)
/// </code>
/// </summary>
public sealed class HeunSampler : Sampler
{
    public override bool IsStochastic => false;

    private protected override int EvaluationsForStep(double sigma, double sigmaNext) => sigmaNext == 0 ? 1 : 2;

    private protected override void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas)
    {
        var denoised = new float[x.Length];
        var x2 = new float[x.Length];
        var denoised2 = new float[x.Length];
        for (int i = 0; i < run.Steps; i++)
        {
            run.BeginStep(i);
            double sigma = sigmas[i], sigmaNext = sigmas[i + 1], dt = sigmaNext - sigma;
            run.Denoise(x, sigma, denoised);
            if (sigmaNext == 0)
            {
                for (int j = 0; j < x.Length; j++)
                {
                    double xj = x[j];
                    x[j] = (float)(xj + (xj - denoised[j]) / sigma * dt);
                }
            }
            else
            {
                for (int j = 0; j < x.Length; j++)
                {
                    double xj = x[j];
                    x2[j] = (float)(xj + (xj - denoised[j]) / sigma * dt);
                }
                run.Denoise(x2, sigmaNext, denoised2);
                for (int j = 0; j < x.Length; j++)
                {
                    double xj = x[j];
                    double d = (xj - denoised[j]) / sigma;
                    double d2 = ((double)x2[j] - denoised2[j]) / sigmaNext;
                    x[j] = (float)(xj + (d + d2) / 2 * dt);
                }
            }
            run.EndStep(sigmas[i + 1]);
        }
    }
}
