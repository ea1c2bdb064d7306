namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// Shape of a 2-D convolution over channels-last input [batch, inH, inW, inChannels]. Padding may be
/// asymmetric (the VAE encoder's downsampler pads right and bottom only).
/// </summary>
public readonly record struct Conv2dGeometry(
    int Batch, int InHeight, int InWidth, int InChannels, int OutChannels,
    int KernelHeight, int KernelWidth, int StrideH = 1, int StrideW = 1,
    int PadTop = 0, int PadLeft = 0, int PadBottom = 0, int PadRight = 0)
{
    public int OutHeight => (InHeight + PadTop + PadBottom - KernelHeight) / StrideH + 1;
    public int OutWidth => (InWidth + PadLeft + PadRight - KernelWidth) / StrideW + 1;

    /// <summary>Length of one im2col row: KernelHeight * KernelWidth * InChannels, ordered (ky, kx, ci).</summary>
    public int PatchSize => KernelHeight * KernelWidth * InChannels;

    public long OutputPixels => (long)Batch * OutHeight * OutWidth;

    public void Validate()
    {
        if (Batch <= 0 || InHeight <= 0 || InWidth <= 0 || InChannels <= 0 || OutChannels <= 0 ||
            KernelHeight <= 0 || KernelWidth <= 0 || StrideH <= 0 || StrideW <= 0 ||
            PadTop < 0 || PadLeft < 0 || PadBottom < 0 || PadRight < 0 || OutHeight <= 0 || OutWidth <= 0)
            throw new ArgumentException($"Invalid convolution geometry {this}.");
    }

    /// <summary>Same-size convolution: odd square kernel, stride 1, symmetric padding k/2.</summary>
    public static Conv2dGeometry Same(int batch, int h, int w, int cin, int cout, int kernel)
        => new(batch, h, w, cin, cout, kernel, kernel, 1, 1, kernel / 2, kernel / 2, kernel / 2, kernel / 2);
}
