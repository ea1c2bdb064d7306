using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// The guidance-scale embedding of guidance-distilled UNets (diffusers' LCM pipelines, <c>get_guidance_scale_embedding</c>),
/// the input of <c>time_embedding.cond_proj</c> when the config sets <c>time_cond_proj_dim</c>. With w' = 1000 * w,
/// half = dim / 2 and freq[i] = exp(-ln(10000) * i / (half - 1)): emb = [sin(w' * freq), cos(w' * freq)] (sin first),
/// an odd dim gets a zero last column. Which value the caller passes as w (diffusers' LCM pipeline passes
/// guidance_scale - 1) is a property of the trained model. Computed in double and rounded once.
/// </summary>
public static class GuidanceEmbedding
{
    /// <summary>w [B] -> [B, dim], a new tensor.</summary>
    public static Tensor Forward(ReadOnlySpan<float> w, int dim)
    {
        if (dim < 4) throw new ArgumentOutOfRangeException(nameof(dim), dim, "The guidance embedding needs dim >= 4 (its frequencies divide by dim/2 - 1).");
        if (w.Length == 0) throw new ArgumentException("At least one guidance scale is needed.", nameof(w));
        foreach (float g in w)
            if (!float.IsFinite(g)) throw new ArgumentException($"Guidance scale {g} is not a finite number.", nameof(w));
        int half = dim / 2;
        var emb = Tensor.Create(w.Length, dim); // [B, dim]
        var values = emb.Span;
        double step = Math.Log(10000.0) / (half - 1);
        for (int b = 0; b < w.Length; b++)
        {
            double scaled = w[b] * 1000.0;
            for (int i = 0; i < half; i++)
            {
                double arg = scaled * Math.Exp(-step * i);
                values[b * dim + i] = (float)Math.Sin(arg);
                values[b * dim + half + i] = (float)Math.Cos(arg);
            }
        }
        return emb;
    }
}
