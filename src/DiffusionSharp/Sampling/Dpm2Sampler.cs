namespace DiffusionSharp.Sampling;

/// <summary>
/// The DPM-Solver-2-inspired midpoint method: k-diffusion <c>sample_dpm_2</c> (no churn), stable-diffusion.cpp
/// <c>dpm2</c>, A1111 "DPM2". The derivative is re-evaluated at the log-sigma midpoint; 2N - 1 evaluations for N steps:
/// <code>
/// sigma_mid = exp((ln sigma_i + ln sigma_{i+1}) / 2)
/// x2 = x + d * (sigma_mid - sigma_i);   d2 = (x2 - D(x2, sigma_mid)) / sigma_mid;   x = x + d2 * (sigma_{i+1} - sigma_i)
/// </code>
/// Euler on a final step to sigma 0. A1111's "DPM2" also drops the next-to-last sigma of an N + 1 list
/// (<c>discard_next_to_last_sigma</c>); that is a spacing choice the caller makes, not part of this sampler.
/// </summary>
public sealed class Dpm2Sampler : Sampler
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
            double sigma = sigmas[i], sigmaNext = sigmas[i + 1];
            run.Denoise(x, sigma, denoised);
            if (sigmaNext == 0)
            {
                for (int j = 0; j < x.Length; j++)
                {
                    double xj = x[j];
                    x[j] = (float)(xj + (xj - denoised[j]) / sigma * (sigmaNext - sigma));
                }
            }
            else
            {
                double sigmaMid = Math.Exp((Math.Log(sigma) + Math.Log(sigmaNext)) / 2);
                for (int j = 0; j < x.Length; j++)
                {
                    double xj = x[j];
                    x2[j] = (float)(xj + (xj - denoised[j]) / sigma * (sigmaMid - sigma));
                }
                run.Denoise(x2, sigmaMid, denoised2);
                for (int j = 0; j < x.Length; j++)
                {
                    double d2 = ((double)x2[j] - denoised2[j]) / sigmaMid;
                    x[j] = (float)(x[j] + d2 * (sigmaNext - sigma));
                }
            }
            run.EndStep(sigmas[i + 1]);
        }
    }
}
