namespace DiffusionSharp.Sampling;

/// <summary>
/// Turns a UNet over discrete timesteps into a denoiser over continuous sigma (k-diffusion <c>k_diffusion/external.py</c>
/// <c>DiscreteEpsDDPMDenoiser</c> / <c>DiscreteVDDPMDenoiser</c>, sigma_data = 1):
/// <code>
/// c_in = 1 / sqrt(sigma^2 + 1),  t = SigmaToT(sigma),  out = model(c_in * x, t)
/// epsilon:  denoised = x - sigma * out                                   (c_skip = 1, c_out = -sigma)
/// v:        denoised = x / (sigma^2 + 1) - sigma / sqrt(sigma^2 + 1) * out
/// </code>
/// It owns one scratch buffer for the scaled input, sized on first use, so a step allocates nothing. Not thread-safe:
/// one denoiser per concurrent sampling run.
/// </summary>
public sealed class Denoiser : IDenoiser
{
    private readonly ModelFunction _model;
    private float[] _scaledInput = [];

    public Denoiser(ModelFunction model, NoiseSchedule schedule, ModelPrediction prediction = ModelPrediction.Epsilon)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(schedule);
        if (!Enum.IsDefined(prediction))
            throw new ArgumentOutOfRangeException(nameof(prediction), prediction, "Not a defined model prediction.");
        _model = model;
        Schedule = schedule;
        Prediction = prediction;
    }

    public NoiseSchedule Schedule { get; }

    public ModelPrediction Prediction { get; }

    public void Denoise(ReadOnlySpan<float> x, double sigma, Span<float> denoised)
    {
        if (denoised.Length != x.Length)
            throw new ArgumentException($"The denoised buffer has {denoised.Length} elements, the latent {x.Length}.", nameof(denoised));
        if (!(sigma > 0) || double.IsPositiveInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "The model is evaluated only at a finite, positive noise level.");
        if (_scaledInput.Length != x.Length)
            _scaledInput = new float[x.Length];

        double cIn = 1 / Math.Sqrt(sigma * sigma + 1);
        for (int i = 0; i < x.Length; i++)
            _scaledInput[i] = (float)(x[i] * cIn);

        _model(_scaledInput, Schedule.SigmaToT(sigma), denoised); // denoised holds the raw model output for now

        double cSkip, cOut;
        if (Prediction == ModelPrediction.Epsilon)
            (cSkip, cOut) = (1, -sigma);
        else
            (cSkip, cOut) = (1 / (sigma * sigma + 1), -sigma * cIn);
        for (int i = 0; i < x.Length; i++)
            denoised[i] = (float)(cSkip * x[i] + cOut * denoised[i]);
    }
}
