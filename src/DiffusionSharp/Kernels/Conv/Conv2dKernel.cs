namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// y = conv2d(x, W) + bias (+ imageBias) (+ residual), channels-last: x [B, H, W, Cin], y [B, Ho, Wo, Cout],
/// residual [B, Ho, Wo, Cout] (may alias y), imageBias [B, Cout] (a bias per image: ResnetBlock2D's time embedding
/// folded into conv1's epilogue); y must not overlap x. Output pixels are independent: deterministic for any
/// thread split.
/// </summary>
public static unsafe partial class Conv2dKernel
{
    public static void Forward(float* x, in Conv2dGeometry g, ConvolutionWeights w, float* bias, float* y, float* residual = null, float* imageBias = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        g.Validate();
        if (w.InChannels != g.InChannels || w.OutChannels != g.OutChannels || w.KernelHeight != g.KernelHeight || w.KernelWidth != g.KernelWidth)
            throw new ArgumentException($"Convolution weights [{w.OutChannels}, {w.InChannels}, {w.KernelHeight}, {w.KernelWidth}] do not match geometry {g}.");
        if (KernelSettings.UseReference) ForwardReference(x, g, w, bias, y, residual, imageBias);
        else Forward(x, g, w, bias, y, residual, imageBias, KernelSettings.BestIsa);
    }
}
