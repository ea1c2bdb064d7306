using DiffusionSharp.Sampling;
using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Tests.Sampling;

/// <summary>
/// The analytic denoiser of tools/fixtures/sampling_reference.py, <c>0.5 tanh(x_j) + 0.1 sin(sigma + j)</c>, evaluated in
/// double; counts its calls and records the sigmas it was called at.
/// </summary>
internal sealed class ToyDenoiser : IDenoiser
{
    public int Calls { get; private set; }

    public List<double> Sigmas { get; } = [];

    /// <summary>When set, the call with this 1-based number returns this value at element 0.</summary>
    public (int Call, float Value)? Poison { get; init; }

    public void Denoise(ReadOnlySpan<float> x, double sigma, Span<float> denoised)
    {
        Calls++;
        Sigmas.Add(sigma);
        for (int j = 0; j < x.Length; j++)
            denoised[j] = (float)(0.5 * Math.Tanh(x[j]) + 0.1 * Math.Sin(sigma + j));
        if (Poison is { } p && p.Call == Calls)
            denoised[0] = p.Value;
    }
}

/// <summary>Hands out stored noise draws in order; fails the test if the sampler asks for more than were stored.</summary>
internal sealed class StoredNoise(double[][] draws) : INoiseGenerator
{
    public int Used { get; private set; }

    public void NextNormal(Span<float> destination)
    {
        if (Used >= draws.Length)
            throw new Xunit.Sdk.XunitException($"The sampler drew noise {Used + 1} times; the reference drew {draws.Length}.");
        var draw = draws[Used++];
        Assert.Equal(draw.Length, destination.Length);
        for (int i = 0; i < draw.Length; i++)
            destination[i] = (float)draw[i];
    }
}

/// <summary>An <see cref="IProgress{T}"/> that records synchronously (Progress&lt;T&gt; posts to a synchronization context).</summary>
internal sealed class RecordingProgress(Action<SamplerProgress>? onReport = null) : IProgress<SamplerProgress>
{
    public List<SamplerProgress> Reports { get; } = [];

    public void Report(SamplerProgress value)
    {
        Reports.Add(value);
        onReport?.Invoke(value);
    }
}
