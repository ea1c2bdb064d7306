using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>Downsample2D</c> with a convolution (key <c>conv</c>): 3x3, stride 2. Padding 1 (UNet) pads every side;
/// padding 0 (VAE encoder) pads only right and bottom by one, as diffusers' F.pad(x, (0, 1, 0, 1)) before an
/// unpadded convolution. Output [B, ceil(H/2), ceil(W/2), C] with padding 1; [B, floor(H/2), floor(W/2), C] with 0.
/// </summary>
public sealed class Downsample2D : Module
{
    private readonly Conv2d _conv;

    public int Channels { get; }

    private Downsample2D(WeightScope scope, int channels, int padding)
    {
        if (padding is not (0 or 1)) throw new ArgumentOutOfRangeException(nameof(padding), padding, "Downsample2D padding must be 0 or 1.");
        Channels = channels;
        var pad = padding == 1 ? Padding2d.Same(1) : new Padding2d(Top: 0, Left: 0, Bottom: 1, Right: 1);
        _conv = Add(Conv2d.Load(scope.Push("conv"), channels, channels, kernelSize: 3, stride: 2, pad));
    }

    public static Downsample2D Load(WeightScope scope, int channels, int padding) => new(scope, channels, padding);

    /// <summary>x [B, H, W, C] -> [B, H/2, W/2, C], a new tensor.</summary>
    public Tensor Forward(Tensor x) => _conv.Forward(x);

    public long MultiplyAccumulates(int height, int width) => _conv.MultiplyAccumulates(height, width);

    /// <summary>Spatial size of the output for an input of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public (int Height, int Width) OutputSize(int height, int width)
    {
        var g = _conv.Geometry(1, height, width);
        return (g.OutHeight, g.OutWidth);
    }
}
