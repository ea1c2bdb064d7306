namespace DiffusionSharp.Sampling;

/// <summary>
/// Euler steps with ancestral noise: k-diffusion <c>sample_euler_ancestral</c>, A1111 "Euler a", stable-diffusion.cpp
/// <c>euler_a</c> (the default sampler of both). Each step goes deterministically down to <c>sigma_down</c> and adds
/// fresh noise of standard deviation <c>sigma_up</c> (<see cref="AncestralStep"/>):
/// <code>
/// d = (x - D(x, sigma_i)) / sigma_i;   x = x + d * (sigma_down - sigma_i);   x = x + s_noise * sigma_up * randn
/// </code>
/// One noise draw per step except the last (N - 1 in all). With eta = 0 it is <see cref="EulerSampler"/> and draws
/// nothing (k-diffusion would draw and multiply by zero, which changes no value).
/// </summary>
public sealed class EulerAncestralSampler : Sampler
{
    /// <param name="eta">Ancestral noise scale; 1 (A1111's <c>eta_ancestral</c>, sd.cpp's default) is DDPM-like.</param>
    /// <param name="sNoise">Multiplier on the injected noise; 1 in A1111 and sd.cpp.</param>
    public EulerAncestralSampler(double eta = 1, double sNoise = 1)
    {
        CheckEta(eta, nameof(eta));
        CheckEta(sNoise, nameof(sNoise));
        Eta = eta;
        SNoise = sNoise;
    }

    public double Eta { get; }

    public double SNoise { get; }

    public override bool IsStochastic => Eta > 0 && SNoise > 0;

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
            double dt = sigmaDown - sigma;
            for (int j = 0; j < x.Length; j++)
            {
                double xj = x[j];
                double d = (xj - denoised[j]) / sigma;
                x[j] = (float)(xj + d * dt);
            }
            if (SNoise * sigmaUp > 0)
                run.AddNoise(x, SNoise * sigmaUp);
            run.EndStep(sigmas[i + 1]);
        }
    }
}
