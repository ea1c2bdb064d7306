using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Sampling;

/// <summary>
/// A k-diffusion-style sampler: walks a latent in sigma form (<c>x = x0 + sigma * noise</c>) down a descending list of
/// noise levels, calling the denoiser once or twice per step. Samplers work element by element on a flat span, so the
/// latent's layout does not matter to them (only to the noise: see <see cref="ChannelsLastNoise"/>).
/// Instances are immutable and may be shared; each <see cref="Sample"/> call allocates its scratch buffers once.
/// <see cref="SamplerRegistry"/> creates them by name.
/// </summary>
public abstract class Sampler
{
    private protected Sampler()
    {
    }

    /// <summary>True when the sampler draws fresh noise during sampling (ancestral samplers, LCM, DDIM with eta &gt; 0).</summary>
    public abstract bool IsStochastic { get; }

    /// <summary>
    /// The starting latent for text-to-image: <c>x = noise * sigmas[0]</c>, as k-diffusion and A1111 start every
    /// k-sampler (diffusers' "leading" spacing would multiply by <c>sqrt(sigma_max^2 + 1)</c> instead).
    /// </summary>
    public static void InitialLatent(ReadOnlySpan<float> noise, ReadOnlySpan<double> sigmas, Span<float> x)
    {
        SigmaSchedules.Validate(sigmas, nameof(sigmas));
        if (noise.Length != x.Length)
            throw new ArgumentException($"The noise has {noise.Length} elements, the latent {x.Length}.", nameof(noise));
        double scale = sigmas[0];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(noise[i] * scale);
    }

    /// <summary>The number of model evaluations <see cref="Sample"/> will make on <paramref name="sigmas"/>.</summary>
    public int ModelEvaluations(ReadOnlySpan<double> sigmas)
    {
        SigmaSchedules.Validate(sigmas, nameof(sigmas));
        int total = 0;
        for (int i = 0; i + 1 < sigmas.Length; i++)
            total += EvaluationsForStep(sigmas[i], sigmas[i + 1]);
        return total;
    }

    /// <summary>
    /// Runs the sampler. <paramref name="x"/> holds the starting latent at noise level <c>sigmas[0]</c> (see
    /// <see cref="InitialLatent"/>) and receives the final latent at <c>sigmas[^1]</c> (normally 0: the clean latent).
    /// Stochastic samplers take one <see cref="INoiseGenerator.NextNormal"/> call of <c>x.Length</c> values per noise
    /// injection; the others never touch <paramref name="noise"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancellation was requested; it is checked before every step.</exception>
    /// <exception cref="NonFiniteModelOutputException">The denoiser returned NaN or infinity; the message names the step.</exception>
    public void Sample(IDenoiser denoiser, Span<float> x, ReadOnlySpan<double> sigmas, INoiseGenerator noise,
        IProgress<SamplerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        ArgumentNullException.ThrowIfNull(noise);
        SigmaSchedules.Validate(sigmas, nameof(sigmas));
        if (x.IsEmpty)
            throw new ArgumentException("The latent is empty.", nameof(x));
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i]))
                throw new ArgumentException($"The starting latent holds {x[i]} at element {i}.", nameof(x));

        var run = new SamplingRun(denoiser, noise, sigmas.Length - 1, ModelEvaluations(sigmas), progress, cancellationToken);
        Run(run, x, sigmas);
    }

    /// <summary>The sampler's loop over <c>sigmas.Length - 1</c> steps, bracketing each with <c>BeginStep</c> / <c>EndStep</c>.</summary>
    private protected abstract void Run(SamplingRun run, Span<float> x, ReadOnlySpan<double> sigmas);

    /// <summary>Model evaluations of the step from <paramref name="sigma"/> to <paramref name="sigmaNext"/>.</summary>
    private protected abstract int EvaluationsForStep(double sigma, double sigmaNext);

    private protected static void CheckEta(double eta, string paramName)
    {
        if (!(eta >= 0) || double.IsPositiveInfinity(eta))
            throw new ArgumentOutOfRangeException(paramName, eta, "eta must be finite and not negative.");
    }
}
