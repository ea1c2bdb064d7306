using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Norm;

/// <summary>
/// GroupNorm over channels-last x [B, S, C] (S = H*W): per (batch, group) mean and biased variance over the S
/// pixels and the C/G channels of the group; y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], optionally
/// followed by SiLU (the pair appears before almost every convolution). x and y may alias.
/// </summary>
public static unsafe class GroupNormKernel
{
    public static void Forward(float* x, int batch, int spatial, int channels, int groups, float eps,
        float* gamma, float* beta, float* y, bool silu)
    {
        if (groups <= 0 || channels % groups != 0)
            throw new ArgumentException($"GroupNorm: {channels} channels cannot be split into {groups} groups.");
        if (KernelSettings.UseReference) { ForwardReference(x, batch, spatial, channels, groups, eps, gamma, beta, y, silu); return; }
        var args = new Args { X = x, S = spatial, C = channels, G = groups, Eps = eps, Gamma = gamma, Beta = beta, Y = y, Silu = silu };
        ThreadScheduler.Default.For(batch, &Batch, &args);
    }

    public static void ForwardReference(float* x, int batch, int spatial, int channels, int groups, float eps,
        float* gamma, float* beta, float* y, bool silu)
    {
        int cg = channels / groups;
        for (int b = 0; b < batch; b++)
        for (int grp = 0; grp < groups; grp++)
        {
            double sum = 0, n = (double)spatial * cg;
            for (int s = 0; s < spatial; s++)
            for (int c = grp * cg; c < (grp + 1) * cg; c++) sum += x[((long)b * spatial + s) * channels + c];
            double mean = sum / n, sq = 0;
            for (int s = 0; s < spatial; s++)
            for (int c = grp * cg; c < (grp + 1) * cg; c++)
            {
                double d = x[((long)b * spatial + s) * channels + c] - mean;
                sq += d * d;
            }
            double inv = 1.0 / Math.Sqrt(sq / n + eps);
            for (int s = 0; s < spatial; s++)
            for (int c = grp * cg; c < (grp + 1) * cg; c++)
            {
                long i = ((long)b * spatial + s) * channels + c;
                double v = (x[i] - mean) * inv * gamma[c] + beta[c];
                y[i] = (float)(silu ? v / (1.0 + Math.Exp(-v)) : v);
            }
        }
    }

    private struct Args
    {
        public float* X; public int S; public int C; public int G; public float Eps;
        public float* Gamma; public float* Beta; public float* Y; public bool Silu;
    }

    private static void Batch(void* context, int b)
    {
        ref Args a = ref Unsafe.AsRef<Args>(context);
        int c = a.C, cg = c / a.G;
        float* x = a.X + (long)b * a.S * c;
        float* y = a.Y + (long)b * a.S * c;
        // Per-channel sums in double (exact enough for any S), then group statistics.
        var sum = new double[c];
        for (int s = 0; s < a.S; s++)
        {
            float* px = x + (long)s * c;
            for (int ch = 0; ch < c; ch++) sum[ch] += px[ch];
        }
        var mean = new double[a.G];
        for (int grp = 0; grp < a.G; grp++)
        {
            double t = 0;
            for (int ch = grp * cg; ch < (grp + 1) * cg; ch++) t += sum[ch];
            mean[grp] = t / ((double)a.S * cg);
        }
        var sq = new double[c];
        for (int s = 0; s < a.S; s++)
        {
            float* px = x + (long)s * c;
            for (int ch = 0; ch < c; ch++)
            {
                double d = px[ch] - mean[ch / cg];
                sq[ch] += d * d;
            }
        }
        // Fold the normalisation into one scale and shift per channel.
        var scale = new float[c];
        var shift = new float[c];
        for (int grp = 0; grp < a.G; grp++)
        {
            double t = 0;
            for (int ch = grp * cg; ch < (grp + 1) * cg; ch++) t += sq[ch];
            double inv = 1.0 / Math.Sqrt(t / ((double)a.S * cg) + a.Eps);
            for (int ch = grp * cg; ch < (grp + 1) * cg; ch++)
            {
                scale[ch] = (float)(inv * a.Gamma[ch]);
                shift[ch] = (float)(a.Beta[ch] - mean[grp] * inv * a.Gamma[ch]);
            }
        }
        fixed (float* sc = scale, sh = shift)
        {
            for (int s = 0; s < a.S; s++)
            {
                float* px = x + (long)s * c, py = y + (long)s * c;
                int ch = 0;
                for (; ch <= c - 16; ch += 16)
                {
                    var v = Vector512.FusedMultiplyAdd(Vector512.Load(px + ch), Vector512.Load(sc + ch), Vector512.Load(sh + ch));
                    if (a.Silu) v = Activations.Silu(v);
                    v.Store(py + ch);
                }
                for (; ch < c; ch++)
                {
                    float v = px[ch] * sc[ch] + sh[ch];
                    py[ch] = a.Silu ? v / (1f + MathF.Exp(-v)) : v;
                }
            }
        }
    }
}
