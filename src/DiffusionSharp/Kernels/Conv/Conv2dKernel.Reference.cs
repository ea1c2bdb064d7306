namespace DiffusionSharp.Kernels.Conv;

public static unsafe partial class Conv2dKernel
{
    /// <summary>Direct convolution, double accumulation: the spec.</summary>
    public static void ForwardReference(float* x, in Conv2dGeometry g, ConvolutionWeights w, float* bias, float* y, float* residual, float* imageBias = null)
    {
        int ho = g.OutHeight, wo = g.OutWidth;
        for (int b = 0; b < g.Batch; b++)
        for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++)
        {
            long outBase = (((long)b * ho + oy) * wo + ox) * g.OutChannels;
            for (int o = 0; o < g.OutChannels; o++)
            {
                double sum = bias != null ? bias[o] : 0.0;
                if (imageBias != null) sum += imageBias[(long)b * g.OutChannels + o];
                for (int ky = 0; ky < g.KernelHeight; ky++)
                {
                    int iy = oy * g.StrideH - g.PadTop + ky;
                    if ((uint)iy >= (uint)g.InHeight) continue;
                    for (int kx = 0; kx < g.KernelWidth; kx++)
                    {
                        int ix = ox * g.StrideW - g.PadLeft + kx;
                        if ((uint)ix >= (uint)g.InWidth) continue;
                        float* px = x + (((long)b * g.InHeight + iy) * g.InWidth + ix) * g.InChannels;
                        for (int ci = 0; ci < g.InChannels; ci++) sum += (double)px[ci] * w[o, ky, kx, ci];
                    }
                }
                if (residual != null) sum += residual[outBase + o];
                y[outBase + o] = (float)sum;
            }
        }
    }
}
