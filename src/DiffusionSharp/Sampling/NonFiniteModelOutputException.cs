using System.Globalization;

namespace DiffusionSharp.Sampling;

/// <summary>
/// The denoiser returned NaN or infinity. Sampling stops at once rather than decode a black or grey image: such output
/// usually means broken weights, an fp16 overflow in a converted checkpoint, or a bad conditioning input.
/// </summary>
public sealed class NonFiniteModelOutputException : InvalidOperationException
{
    public NonFiniteModelOutputException(int step, int steps, double sigma, int index, float value)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"The model output holds {value} at element {index} in step {step} of {steps} (sigma {sigma:G6}); sampling was stopped. Check the weights (an fp16 overflow?) and the conditioning."))
    {
        Step = step;
        Steps = steps;
        Sigma = sigma;
    }

    /// <summary>The 1-based step whose model evaluation failed.</summary>
    public int Step { get; }

    public int Steps { get; }

    /// <summary>The noise level the model was evaluated at.</summary>
    public double Sigma { get; }
}
