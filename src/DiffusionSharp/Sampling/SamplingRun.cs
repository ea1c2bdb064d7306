using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Sampling;

/// <summary>
/// The bookkeeping every sampler shares during one <see cref="Sampler.Sample"/> call: cancellation between steps,
/// model evaluation counting and the non-finite check, noise injection, progress reports.
/// </summary>
internal sealed class SamplingRun(IDenoiser denoiser, INoiseGenerator noise, int steps, int totalEvaluations,
    IProgress<SamplerProgress>? progress, CancellationToken cancellationToken)
{
    private float[] _noise = [];
    private int _step;
    private int _evaluations;

    public int Steps => steps;

    /// <summary>Throws <see cref="OperationCanceledException"/> if cancellation was requested before step <paramref name="i"/>.</summary>
    public void BeginStep(int i)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _step = i;
    }

    /// <summary>One model evaluation; throws <see cref="NonFiniteModelOutputException"/> naming the step if it returns NaN or infinity.</summary>
    public void Denoise(ReadOnlySpan<float> x, double sigma, Span<float> denoised)
    {
        denoiser.Denoise(x, sigma, denoised);
        _evaluations++;
        for (int i = 0; i < denoised.Length; i++)
            if (!float.IsFinite(denoised[i]))
                throw new NonFiniteModelOutputException(_step + 1, Steps, sigma, i, denoised[i]);
    }

    /// <summary><c>x += scale * randn_like(x)</c>, one generator call.</summary>
    public void AddNoise(Span<float> x, double scale)
    {
        if (_noise.Length != x.Length)
            _noise = new float[x.Length];
        noise.NextNormal(_noise);
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(x[i] + scale * _noise[i]);
    }

    /// <summary>Reports the step as done, the latent now being at noise level <paramref name="sigmaReached"/>.</summary>
    public void EndStep(double sigmaReached) =>
        progress?.Report(new SamplerProgress(_step + 1, Steps, _evaluations, totalEvaluations, sigmaReached));
}
