namespace DiffusionSharp.Sampling;

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022), the multistep second-order solver in data prediction: k-diffusion
/// <c>sample_dpmpp_2m</c>, A1111 "DPM++ 2M" (with Karras sigmas the most used SD 1.5 setting), stable-diffusion.cpp
/// <c>dpm++2m</c>. One evaluation per step; with <c>t = -ln sigma</c>, <c>h = t_{i+1} - t_i</c>:
/// <code>
/// first step, or sigma_{i+1} = 0:  x = (sigma_{i+1} / sigma_i) x - expm1(-h) D_i
/// otherwise:  r = h_{i-1} / h;   D' = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1};   x = (sigma_{i+1} / sigma_i) x - expm1(-h) D'
/// </code>
/// The final step to sigma 0 is first order and returns the denoised latent.
/// </summary>
public sealed class DpmPP2MSampler : Sampler
{
    public override bool IsStochastic => false;

    private protected override int EvaluationsForStep(double sigma, double sigmaNext) => 1;

    private protected override void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas)
    {
        var denoised = new float[x.Length];
        var oldDenoised = new float[x.Length];
        for (int i = 0; i < run.Steps; i++)
        {
            run.BeginStep(i);
            double sigma = sigmas[i], sigmaNext = sigmas[i + 1];
            run.Denoise(x, sigma, denoised);
            double h = Math.Log(sigma) - Math.Log(sigmaNext); // t_next - t; +inf when sigmaNext = 0
            double ratio = sigmaNext / sigma;                 // sigma_fn(t_next) / sigma_fn(t)
            double weight = -double.ExpM1(-h);
            if (i == 0 || sigmaNext == 0)
            {
                for (int j = 0; j < x.Length; j++)
                    x[j] = (float)(ratio * x[j] + weight * denoised[j]);
            }
            else
            {
                double hLast = Math.Log(sigmas[i - 1]) - Math.Log(sigma);
                double r = hLast / h;
                double a = 1 + 1 / (2 * r), b = 1 / (2 * r);
                for (int j = 0; j < x.Length; j++)
                    x[j] = (float)(ratio * x[j] + weight * (a * denoised[j] - b * oldDenoised[j]));
            }
            (denoised, oldDenoised) = (oldDenoised, denoised);
            run.EndStep(sigmas[i + 1]);
        }
    }
}
