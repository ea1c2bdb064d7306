using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>Upsample2D</c> with a convolution (key <c>conv</c>): nearest-neighbour upsampling by 2 (or to an explicit
/// size, as the UNet asks when the latent is not a multiple of its downscale factor), then a 3x3 convolution.
/// </summary>
public sealed unsafe class Upsample2D : Module
{
    private readonly Conv2d _conv;

    public int Channels { get; }

    private Upsample2D(WeightScope scope, int channels)
    {
        Channels = channels;
        _conv = Add(Conv2d.Load(scope.Push("conv"), channels, channels, kernelSize: 3, padding: 1));
    }

    public static Upsample2D Load(WeightScope scope, int channels) => new(scope, channels);

    /// <summary>x [B, H, W, C] -> [B, Ho, Wo, C] with (Ho, Wo) = <paramref name="outputSize"/> or (2H, 2W); a new tensor.</summary>
    public Tensor Forward(Tensor x, (int Height, int Width)? outputSize = null)
    {
        if (x.Rank != 4 || x.Shape[3] != Channels)
            throw new ArgumentException($"Upsample2D: input {x} must be [B, H, W, {Channels}].", nameof(x));
        int b = x.Shape[0], h = x.Shape[1], w = x.Shape[2];
        var (ho, wo) = outputSize ?? (2 * h, 2 * w);
        if (ho < 1 || wo < 1) throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "Upsample2D output size must be positive.");
        using var upsampled = Tensor.Create(b, ho, wo, Channels); // [B, Ho, Wo, C]
        if (ho == 2 * h && wo == 2 * w) TensorOps.UpsampleNearest2x(x.Data, b, h, w, Channels, upsampled.Data); // [B, 2H, 2W, C]
        else ResizeNearest(x, upsampled); // [B, Ho, Wo, C]
        return _conv.Forward(upsampled); // [B, Ho, Wo, C]
    }

    /// <summary>PyTorch's 'nearest' interpolation: source index floor(dst * in / out), clamped to the input.</summary>
    private static void ResizeNearest(Tensor x, Tensor y)
    {
        int b = x.Shape[0], h = x.Shape[1], w = x.Shape[2], c = x.Shape[3], ho = y.Shape[1], wo = y.Shape[2];
        float scaleH = (float)h / ho, scaleW = (float)w / wo;
        long rowBytes = (long)c * sizeof(float);
        for (int i = 0; i < b; i++)
        for (int oy = 0; oy < ho; oy++)
        {
            int iy = Math.Min((int)MathF.Floor(oy * scaleH), h - 1);
            for (int ox = 0; ox < wo; ox++)
            {
                int ix = Math.Min((int)MathF.Floor(ox * scaleW), w - 1);
                Buffer.MemoryCopy(x.Data + (((long)i * h + iy) * w + ix) * c, y.Data + (((long)i * ho + oy) * wo + ox) * c, rowBytes, rowBytes);
            }
        }
    }

    /// <summary>Multiply-accumulates of the convolution at the output size.</summary>
    public long MultiplyAccumulates(int outputHeight, int outputWidth) => _conv.MultiplyAccumulates(outputHeight, outputWidth);
}
