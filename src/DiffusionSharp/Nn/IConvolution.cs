using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>A 2-D convolution over channels-last tensors, whichever way it is factored
/// (<see cref="Conv2d"/>, <see cref="DepthwiseSeparableConv2d"/>).</summary>
public interface IConvolution : IDisposable
{
    int InChannels { get; }
    int OutChannels { get; }

    /// <summary>x [B, H, W, Cin] -> [B, Ho, Wo, Cout] (+ residual [B, Ho, Wo, Cout]); a new tensor.</summary>
    Tensor Forward(Tensor x, Tensor? residual = null);

    /// <summary>x [B, H, W, Cin] -> conv(x) + imageBias [B, Cout] broadcast over each image's pixels, the add folded into
    /// the convolution's epilogue (ResnetBlock2D's time embedding); a new tensor.</summary>
    Tensor ForwardWithImageBias(Tensor x, Tensor imageBias);

    /// <summary>Multiply-accumulates of one forward over a batch-1 input of <paramref name="height"/> x <paramref name="width"/>.</summary>
    long MultiplyAccumulates(int height, int width);
}
