using DiffusionSharp.Kernels.Quant;

namespace DiffusionSharp.Quantization;

/// <summary>
/// Round-to-nearest weight quantizers over a row-major [N, K] matrix (N outputs, K inputs), the scales rounded to fp16
/// first (they are stored as fp16) so the codes are chosen for the scale the kernels will use:
/// <list type="bullet">
/// <item>int4 symmetric per output and group of K: s = fp16(max|w| / 7), q = clamp(round(w / s), -8, 7);</item>
/// <item>int8 symmetric per output channel: s = fp16(max|w| / 127), q = clamp(round(w / s), -127, 127);</item>
/// <item>NF4 per output and group: a = fp16(max|w|), q = the nearest of the 16 levels to w / a (ties to the lower).</item>
/// </list>
/// Rounding is to nearest, ties to even. A zero group has scale 0 and codes 0.
/// </summary>
public static class WeightQuantizer
{
    public static (sbyte[] Codes, float[] Scales) Int4Groups(ReadOnlySpan<double> w, int n, int k, int group)
    {
        Check(w, n, k);
        int groups = (k + group - 1) / group;
        var codes = new sbyte[n * k];
        var scales = new float[n * groups];
        for (int o = 0; o < n; o++)
        for (int g = 0; g < groups; g++)
        {
            int start = g * group, end = Math.Min(k, start + group);
            double amax = 0;
            for (int i = start; i < end; i++) amax = Math.Max(amax, Math.Abs(w[o * k + i]));
            float s = (float)(Half)(amax / 7);
            scales[o * groups + g] = s;
            if (s == 0) continue;
            for (int i = start; i < end; i++) codes[o * k + i] = (sbyte)Math.Clamp(Math.Round(w[o * k + i] / s, MidpointRounding.ToEven), -8, 7);
        }
        return (codes, scales);
    }

    public static (sbyte[] Codes, float[] Scales) Int8Channels(ReadOnlySpan<double> w, int n, int k)
    {
        Check(w, n, k);
        var codes = new sbyte[n * k];
        var scales = new float[n];
        for (int o = 0; o < n; o++)
        {
            double amax = 0;
            for (int i = 0; i < k; i++) amax = Math.Max(amax, Math.Abs(w[o * k + i]));
            float s = (float)(Half)(amax / 127);
            scales[o] = s;
            if (s == 0) continue;
            for (int i = 0; i < k; i++) codes[o * k + i] = (sbyte)Math.Clamp(Math.Round(w[o * k + i] / s, MidpointRounding.ToEven), -127, 127);
        }
        return (codes, scales);
    }

    public static (byte[] Codes, float[] Absmax) Nf4Groups(ReadOnlySpan<double> w, int n, int k, int group)
    {
        Check(w, n, k);
        int groups = (k + group - 1) / group;
        var codes = new byte[n * k];
        var absmax = new float[n * groups];
        var levels = Nf4Matrix.Levels;
        for (int o = 0; o < n; o++)
        for (int g = 0; g < groups; g++)
        {
            int start = g * group, end = Math.Min(k, start + group);
            double amax = 0;
            for (int i = start; i < end; i++) amax = Math.Max(amax, Math.Abs(w[o * k + i]));
            float a = (float)(Half)amax;
            absmax[o * groups + g] = a;
            for (int i = start; i < end; i++)
            {
                double v = a == 0 ? 0 : w[o * k + i] / a;
                int best = 0;
                for (int c = 1; c < 16; c++)
                    if (Math.Abs(v - levels[c]) < Math.Abs(v - levels[best])) best = c;
                codes[o * k + i] = (byte)best;
            }
        }
        return (codes, absmax);
    }

    /// <summary>The int4 (or int8, <paramref name="group"/> = k) codes times their scales: what the quantized weight stands for.</summary>
    public static double[] Dequantize(ReadOnlySpan<sbyte> codes, ReadOnlySpan<float> scales, int n, int k, int group)
    {
        int groups = (k + group - 1) / group;
        var w = new double[n * k];
        for (int o = 0; o < n; o++)
        for (int i = 0; i < k; i++)
            w[o * k + i] = codes[o * k + i] * (double)scales[o * groups + i / group];
        return w;
    }

    private static void Check(ReadOnlySpan<double> w, int n, int k)
    {
        if (n <= 0 || k <= 0 || w.Length != (long)n * k) throw new ArgumentException($"A [{n}, {k}] weight needs {(long)n * k} values, got {w.Length}.");
        foreach (double v in w)
            if (!double.IsFinite(v)) throw new ArgumentException($"The weight holds {v}; only finite weights can be quantized.");
    }
}
