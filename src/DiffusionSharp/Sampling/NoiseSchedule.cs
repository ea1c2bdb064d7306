using System.Globalization;

namespace DiffusionSharp.Sampling;

/// <summary>
/// The discrete training noise schedule of a latent diffusion model: <c>alphas_cumprod</c> per training timestep
/// and the matching noise levels <c>sigma_t = sqrt((1 - abar_t) / abar_t)</c>, with k-diffusion's conversions between
/// a continuous sigma and a fractional timestep (<c>k_diffusion/external.py</c> <c>DiscreteSchedule</c>).
/// Everything is float64. LDM and A1111 round <c>alphas_cumprod</c> to float32 before deriving sigmas, and
/// stable-diffusion.cpp computes the schedule in float32; both differ from these values by about 1e-7 relative.
/// </summary>
public sealed class NoiseSchedule
{
    private readonly double[] _alphasCumprod;
    private readonly double[] _sigmas;
    private readonly double[] _logSigmas;

    private NoiseSchedule(double[] alphasCumprod)
    {
        _alphasCumprod = alphasCumprod;
        _sigmas = new double[alphasCumprod.Length];
        _logSigmas = new double[alphasCumprod.Length];
        for (int i = 0; i < alphasCumprod.Length; i++)
        {
            _sigmas[i] = Math.Sqrt((1 - alphasCumprod[i]) / alphasCumprod[i]);
            _logSigmas[i] = Math.Log(_sigmas[i]);
        }
    }

    /// <summary>Stable Diffusion 1.x/2.x and SDXL: <see cref="ScaledLinear"/> with its default arguments.</summary>
    public static NoiseSchedule StableDiffusion { get; } = ScaledLinear();

    /// <summary>
    /// diffusers <c>beta_schedule="scaled_linear"</c> (LDM <c>make_beta_schedule("linear")</c>):
    /// <c>beta_i = (sqrt(b0) + (sqrt(b1) - sqrt(b0)) * i / (T - 1))^2</c>, <c>abar_i = prod_{j &lt;= i} (1 - beta_j)</c>.
    /// </summary>
    public static NoiseSchedule ScaledLinear(double betaStart = 0.00085, double betaEnd = 0.012, int trainSteps = 1000)
    {
        CheckBetas(betaStart, betaEnd, trainSteps);
        double sqrtStart = Math.Sqrt(betaStart), sqrtEnd = Math.Sqrt(betaEnd);
        return FromBetas(trainSteps, i =>
        {
            double root = sqrtStart + (sqrtEnd - sqrtStart) * i / (trainSteps - 1);
            return root * root;
        });
    }

    /// <summary>diffusers <c>beta_schedule="linear"</c> (the DDPM schedule): betas evenly spaced from start to end.</summary>
    public static NoiseSchedule Linear(double betaStart = 0.0001, double betaEnd = 0.02, int trainSteps = 1000)
    {
        CheckBetas(betaStart, betaEnd, trainSteps);
        return FromBetas(trainSteps, i => betaStart + (betaEnd - betaStart) * i / (trainSteps - 1));
    }

    /// <summary>
    /// A schedule given by its <c>alphas_cumprod</c> (a model's own table). Each value must lie strictly between 0 and 1
    /// and the table must strictly decrease, so that every timestep has its own finite, positive sigma. A zero-terminal-SNR
    /// table must be clamped first (diffusers clamps the last value to 2^-24).
    /// </summary>
    public static NoiseSchedule FromAlphasCumprod(ReadOnlySpan<double> alphasCumprod)
    {
        if (alphasCumprod.Length < 2)
            throw new ArgumentException($"alphas_cumprod needs at least 2 training timesteps, got {alphasCumprod.Length}.", nameof(alphasCumprod));
        for (int i = 0; i < alphasCumprod.Length; i++)
        {
            double a = alphasCumprod[i];
            if (!(a > 0 && a < 1))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"alphas_cumprod[{i}] = {a:R} is outside (0, 1): sigma would be zero, infinite or undefined."), nameof(alphasCumprod));
            if (i > 0 && !(a < alphasCumprod[i - 1]))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"alphas_cumprod must strictly decrease, but [{i - 1}] = {alphasCumprod[i - 1]:R} and [{i}] = {a:R}."), nameof(alphasCumprod));
        }
        return new NoiseSchedule(alphasCumprod.ToArray());
    }

    /// <summary>Number of training timesteps T (1000 for SD); timesteps run from 0 to T - 1.</summary>
    public int TrainSteps => _alphasCumprod.Length;

    /// <summary><c>alphas_cumprod[t]</c>, t = 0..T-1.</summary>
    public ReadOnlySpan<double> AlphasCumprod => _alphasCumprod;

    /// <summary>The noise level of each training timestep, increasing with t.</summary>
    public ReadOnlySpan<double> Sigmas => _sigmas;

    /// <summary><c>sigma_0</c> (0.0291672 for SD).</summary>
    public double SigmaMin => _sigmas[0];

    /// <summary><c>sigma_{T-1}</c> (14.6146412 for SD).</summary>
    public double SigmaMax => _sigmas[^1];

    /// <summary>
    /// The fractional timestep of a noise level, interpolating linearly in log sigma between the two neighbouring
    /// training timesteps (k-diffusion <c>sigma_to_t</c>, stable-diffusion.cpp <c>CompVisDenoiser::sigma_to_t</c>).
    /// Sigmas below <see cref="SigmaMin"/> (zero included) give 0, sigmas above <see cref="SigmaMax"/> give T - 1.
    /// </summary>
    public double SigmaToT(double sigma)
    {
        if (!(sigma >= 0) || double.IsPositiveInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "A noise level must be finite and not negative.");
        double logSigma = Math.Log(sigma);
        // The last index whose log sigma is <= log(sigma), or 0 if none; at most T - 2 so that low + 1 exists.
        int low = _logSigmas.AsSpan().BinarySearch(logSigma);
        low = low >= 0 ? low : ~low - 1;
        low = Math.Clamp(low, 0, _logSigmas.Length - 2);
        double w = (_logSigmas[low] - logSigma) / (_logSigmas[low] - _logSigmas[low + 1]);
        w = Math.Clamp(w, 0, 1);
        return (1 - w) * low + w * (low + 1);
    }

    /// <summary>
    /// The noise level of a fractional timestep, interpolating linearly in log sigma between <c>floor(t)</c> and
    /// <c>ceil(t)</c> (k-diffusion <c>t_to_sigma</c>). Integer timesteps give <see cref="Sigmas"/> up to rounding.
    /// </summary>
    public double TToSigma(double t)
    {
        if (!(t >= 0 && t <= TrainSteps - 1))
            throw new ArgumentOutOfRangeException(nameof(t), t, $"A timestep must lie in [0, {TrainSteps - 1}].");
        int low = (int)Math.Floor(t);
        int high = (int)Math.Ceiling(t);
        double w = t - low;
        return Math.Exp((1 - w) * _logSigmas[low] + w * _logSigmas[high]);
    }

    private static void CheckBetas(double betaStart, double betaEnd, int trainSteps)
    {
        if (trainSteps < 2)
            throw new ArgumentOutOfRangeException(nameof(trainSteps), trainSteps, "A noise schedule needs at least 2 training timesteps.");
        if (!(betaStart > 0 && betaStart < 1))
            throw new ArgumentOutOfRangeException(nameof(betaStart), betaStart, "beta_start must lie in (0, 1).");
        if (!(betaEnd > 0 && betaEnd < 1))
            throw new ArgumentOutOfRangeException(nameof(betaEnd), betaEnd, "beta_end must lie in (0, 1).");
    }

    private static NoiseSchedule FromBetas(int trainSteps, Func<int, double> beta)
    {
        var alphasCumprod = new double[trainSteps];
        double product = 1;
        for (int i = 0; i < trainSteps; i++)
        {
            product *= 1 - beta(i);
            alphasCumprod[i] = product;
        }
        return FromAlphasCumprod(alphasCumprod);
    }
}
