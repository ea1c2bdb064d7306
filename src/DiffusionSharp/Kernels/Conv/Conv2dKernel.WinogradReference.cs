namespace DiffusionSharp.Kernels.Conv;

public static unsafe partial class Conv2dKernel
{
    /// <summary>
    /// Winograd F(4x4, 3x3) written as the formula, in double: per 4x4 output tile and output channel,
    /// Aᵀ [Σ over ci of U_ci ⊙ (Bᵀ d_ci B)] A + bias (+ residual), with the matrices of <see cref="Winograd43"/> and the
    /// transformed filters U as stored. The twin of <see cref="ForwardWinograd(float*, in Conv2dGeometry, WinogradWeights, float*, float*, float*)"/>.
    /// </summary>
    public static void ForwardWinogradReference(float* x, in Conv2dGeometry g, WinogradWeights u, float* bias, float* y, float* residual)
    {
        int ho = g.OutHeight, wo = g.OutWidth, cin = g.InChannels, cout = g.OutChannels;
        var transformed = new double[cin][,]; // Bᵀ d B per input channel: [6, 6]
        var d = new double[6, 6];
        var products = new double[6, 6];
        for (int b = 0; b < g.Batch; b++)
        for (int oy0 = 0; oy0 < ho; oy0 += 4)
        for (int ox0 = 0; ox0 < wo; ox0 += 4)
        {
            for (int ci = 0; ci < cin; ci++)
            {
                for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                {
                    int iy = oy0 - g.PadTop + i, ix = ox0 - g.PadLeft + j;
                    bool inside = (uint)iy < (uint)g.InHeight && (uint)ix < (uint)g.InWidth;
                    d[i, j] = inside ? x[(((long)b * g.InHeight + iy) * g.InWidth + ix) * cin + ci] : 0.0;
                }
                transformed[ci] = Winograd43.Sandwich(Winograd43.BT, d, Winograd43.BT);
            }
            for (int o = 0; o < cout; o++)
            {
                for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                {
                    double sum = 0;
                    for (int ci = 0; ci < cin; ci++) sum += transformed[ci][i, j] * u[i * 6 + j, o, ci];
                    products[i, j] = sum;
                }
                var tile = Winograd43.Sandwich(Winograd43.AT, products, Winograd43.AT); // [4, 4]
                for (int i = 0; i < 4 && oy0 + i < ho; i++)
                for (int j = 0; j < 4 && ox0 + j < wo; j++)
                {
                    long at = (((long)b * ho + oy0 + i) * wo + ox0 + j) * cout + o;
                    double value = tile[i, j] + (bias != null ? bias[o] : 0.0);
                    if (residual != null) value += residual[at];
                    y[at] = (float)value;
                }
            }
        }
    }
}
