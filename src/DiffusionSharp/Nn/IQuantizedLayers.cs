using DiffusionSharp.Kernels.Quant;

namespace DiffusionSharp.Nn;

/// <summary>
/// Quantized replacements for some layers of a model, by layer key (the checkpoint key prefix of the layer's
/// <c>weight</c>, e.g. <c>down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q</c>). <see cref="Linear"/> and
/// <see cref="Conv2d"/> bind these instead of their fp32 weights when their <see cref="WeightScope"/> carries them.
/// </summary>
public interface IQuantizedLayers
{
    /// <summary>
    /// The quantized weights stored for the layer at <paramref name="layerKey"/>, checked against the shape the model
    /// gives it (<paramref name="kernelSize"/> 1 for a linear layer or a 1x1 convolution); null when that layer is
    /// stored unquantized. The caller owns (disposes) the result. A stored layer that does not fit throws a
    /// <see cref="IO.FileFormatException"/> naming the file and tensor.
    /// </summary>
    QuantizedMatrix? Bind(string layerKey, int inChannels, int outChannels, int kernelSize);
}
