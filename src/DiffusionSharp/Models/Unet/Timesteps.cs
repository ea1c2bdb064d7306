using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>Timesteps</c> (<c>get_timestep_embedding</c>): the sinusoidal embedding of (possibly fractional)
/// timesteps, one per batch item. With half = dim / 2 and freq[i] = exp(-ln(10000) * i / (half - freq_shift)):
/// emb = [sin(t * freq), cos(t * freq)], or [cos, sin] when flip_sin_to_cos (SD: flip, shift 0); an odd dim gets a
/// zero last column. Computed in double and rounded once (diffusers computes in fp32; the reference in float64).
/// </summary>
public sealed class Timesteps(int numChannels, bool flipSinToCos, float downscaleFreqShift)
{
    private const double MaxPeriod = 10000.0;

    public int NumChannels { get; } = numChannels;
    public bool FlipSinToCos { get; } = flipSinToCos;
    public float DownscaleFreqShift { get; } = downscaleFreqShift;

    /// <summary>timesteps [B] -> [B, NumChannels], a new tensor.</summary>
    public Tensor Forward(ReadOnlySpan<float> timesteps)
    {
        if (timesteps.Length == 0) throw new ArgumentException("At least one timestep is needed.", nameof(timesteps));
        foreach (float t in timesteps)
            if (!float.IsFinite(t)) throw new ArgumentException($"Timestep {t} is not a finite number.", nameof(timesteps));
        int half = NumChannels / 2;
        var emb = Tensor.Create(timesteps.Length, NumChannels); // [B, dim]
        var values = emb.Span;
        for (int b = 0; b < timesteps.Length; b++)
        {
            var row = values.Slice(b * NumChannels, NumChannels);
            for (int i = 0; i < half; i++)
            {
                double arg = timesteps[b] * Math.Exp(-Math.Log(MaxPeriod) * i / (half - DownscaleFreqShift));
                float sin = (float)Math.Sin(arg), cos = (float)Math.Cos(arg);
                row[i] = FlipSinToCos ? cos : sin;
                row[half + i] = FlipSinToCos ? sin : cos;
            }
        }
        return emb;
    }
}
