namespace DiffusionSharp.Kernels.Quant;

internal static unsafe partial class IntegerGemm
{
    /// <summary>
    /// 4-bit weights, scalar integer code over the packed layout: the fallback where neither AVX-512BW nor AVX-VNNI
    /// exists, and the proof that the layout means what <see cref="IntegerMatrix"/> says. Same float operations as the
    /// vector paths (per group: one FMA of the converted sum times sw · sx).
    /// </summary>
    internal struct Int4PortableMicroKernel : IMicroKernel
    {
        public static void Compute(ref Problem p, in Quad q, int rows, int panel0, int cols, float* dst)
        {
            for (int r = 0; r < rows; r++)
            {
                sbyte* a = q.Codes + (long)r * p.PaddedK;
                float* sa = q.Scales + (long)r * p.Groups;
                int* corr = q.Corrections + (long)r * p.Groups;
                for (int c = 0; c < cols; c++)
                {
                    int panel = panel0 + c / IntegerMatrix.PanelWidth, lane = c % IntegerMatrix.PanelWidth;
                    byte* w = p.Weights + panel * p.PanelWeightBytes + 4 * lane;
                    float* sw = p.Scales + (long)panel * p.PanelScaleFloats + lane;
                    float acc = 0f;
                    for (int g = 0; g < p.Groups; g++)
                    {
                        int dot = 0;
                        for (int k = g * p.GroupSize; k < (g + 1) * p.GroupSize; k += 8)
                        {
                            byte* b = w + (long)k * 8;
                            for (int j = 0; j < 4; j++)
                                dot += a[k + j] * (b[j] & 0x0F) + a[k + 4 + j] * (b[j] >> 4);
                        }
                        acc = MathF.FusedMultiplyAdd(dot - corr[g], sw[g * IntegerMatrix.PanelWidth] * sa[g], acc);
                    }
                    dst[r * Cols + c] = acc;
                }
                for (int v = 0; v * IntegerMatrix.PanelWidth < cols; v++)
                    LowRankUp(ref p, q.LowRank + (long)r * p.BranchWidth, panel0 + v, dst + r * Cols + v * IntegerMatrix.PanelWidth, Math.Min(IntegerMatrix.PanelWidth, cols - v * IntegerMatrix.PanelWidth));
            }
        }
    }

    /// <summary>8-bit weights (one group per row), scalar.</summary>
    internal struct Int8PortableMicroKernel : IMicroKernel
    {
        public static void Compute(ref Problem p, in Quad q, int rows, int panel0, int cols, float* dst)
        {
            for (int r = 0; r < rows; r++)
            {
                sbyte* a = q.Codes + (long)r * p.PaddedK;
                float sa = q.Scales[r];
                int corr = q.Corrections[r];
                for (int c = 0; c < cols; c++)
                {
                    int panel = panel0 + c / IntegerMatrix.PanelWidth, lane = c % IntegerMatrix.PanelWidth;
                    byte* w = p.Weights + panel * p.PanelWeightBytes + 4 * lane;
                    int dot = 0;
                    for (int k = 0; k < p.PaddedK; k += 4)
                    {
                        byte* b = w + (long)k * 16;
                        dot += a[k] * b[0] + a[k + 1] * b[1] + a[k + 2] * b[2] + a[k + 3] * b[3];
                    }
                    dst[r * Cols + c] = MathF.FusedMultiplyAdd(dot - corr, p.Scales[(long)panel * p.PanelScaleFloats + lane] * sa, 0f);
                }
                for (int v = 0; v * IntegerMatrix.PanelWidth < cols; v++)
                    LowRankUp(ref p, q.LowRank + (long)r * p.BranchWidth, panel0 + v, dst + r * Cols + v * IntegerMatrix.PanelWidth, Math.Min(IntegerMatrix.PanelWidth, cols - v * IntegerMatrix.PanelWidth));
            }
        }
    }
}
