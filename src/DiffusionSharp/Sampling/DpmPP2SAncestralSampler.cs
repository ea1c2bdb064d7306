namespace DiffusionSharp.Sampling;

/// <summary>
/// DPM-Solver++(2S) single-step second order with ancestral noise: k-diffusion <c>sample_dpmpp_2s_ancestral</c>,
/// A1111 "DPM++ 2S a", stable-diffusion.cpp <c>dpm++2s_a</c>. Each step targets <c>sigma_down</c> of
/// <see cref="AncestralStep"/> through its log-sigma midpoint, then adds <c>sigma_up</c> noise; with
/// <c>t = -ln sigma_i</c>, <c>h = -ln sigma_down - t</c>, <c>sigma_s = exp(-(t + h/2))</c>:
/// <code>
/// x2 = (sigma_s / sigma_i) x - expm1(-h/2) D(x, sigma_i);   x = (sigma_down / sigma_i) x - expm1(-h) D(x2, sigma_s)
/// x = x + s_noise * sigma_up * randn                        (Euler to sigma_down when sigma_down = 0)
/// </code>
/// </summary>
public sealed class DpmPP2SAncestralSampler : Sampler
{
    /// <param name="eta">Ancestral noise scale; 1 in A1111 and sd.cpp. With 0 the sampler is DPM-Solver++(2S) and draws nothing.</param>
    /// <param name="sNoise">Multiplier on the injected noise; 1 in A1111 and sd.cpp.</param>
    public DpmPP2SAncestralSampler(double eta = 1, double sNoise = 1)
    {
        CheckEta(eta, nameof(eta));
        CheckEta(sNoise, nameof(sNoise));
        Eta = eta;
        SNoise = sNoise;
    }

    public double Eta { get; }

    public double SNoise { get; }

    public override bool IsStochastic => Eta > 0 && SNoise > 0;

    private protected override int EvaluationsForStep(double sigma, double sigmaNext) =>
        AncestralStep.Get(sigma, sigmaNext, Eta).Down == 0 ? 1 : 2;

    private protected override void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas)
    {
        var denoised = new float[x.Length];
        var x2 = new float[x.Length];
        var denoised2 = new float[x.Length];
        for (int i = 0; i < run.Steps; i++)
        {
            run.BeginStep(i);
            double sigma = sigmas[i];
            run.Denoise(x, sigma, denoised);
            var (sigmaDown, sigmaUp) = AncestralStep.Get(sigma, sigmas[i + 1], Eta);
            if (sigmaDown == 0)
            {
                for (int j = 0; j < x.Length; j++)
                {
                    double xj = x[j];
                    x[j] = (float)(xj + (xj - denoised[j]) / sigma * (sigmaDown - sigma));
                }
            }
            else
            {
                double t = -Math.Log(sigma), tNext = -Math.Log(sigmaDown);
                double h = tNext - t;
                double sigmaS = Math.Exp(-(t + h / 2));
                double ratio1 = sigmaS / sigma, weight1 = -double.ExpM1(-h / 2);
                for (int j = 0; j < x.Length; j++)
                    x2[j] = (float)(ratio1 * x[j] + weight1 * denoised[j]);
                run.Denoise(x2, sigmaS, denoised2);
                double ratio2 = sigmaDown / sigma, weight2 = -double.ExpM1(-h);
                for (int j = 0; j < x.Length; j++)
                    x[j] = (float)(ratio2 * x[j] + weight2 * denoised2[j]);
            }
            if (SNoise * sigmaUp > 0)
                run.AddNoise(x, SNoise * sigmaUp);
            run.EndStep(sigmas[i + 1]);
        }
    }
}
