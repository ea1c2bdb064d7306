using DiffusionSharp.Models.Unet;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>
/// diffusers <c>UNetMidBlock2D</c> as the VAE uses it: <c>resnets.0</c> -> <c>attentions.0</c> -> <c>resnets.1</c>, no time
/// embedding, eps 1e-6. Without <c>mid_block_add_attention</c> the attention is left out.
/// </summary>
public sealed class UNetMidBlock2D : Module
{
    private const float Eps = 1e-6f;

    private readonly ResnetBlock2D _resnet0;
    private readonly AttentionBlock? _attention;
    private readonly ResnetBlock2D _resnet1;

    private UNetMidBlock2D(WeightScope scope, int channels, int groups, bool addAttention)
    {
        try
        {
            var resnets = scope.Push("resnets");
            _resnet0 = Add(ResnetBlock2D.Load(resnets.Push(0), channels, channels, null, groups, Eps));
            if (addAttention) _attention = Add(AttentionBlock.Load(scope.Push("attentions").Push(0), channels, groups));
            _resnet1 = Add(ResnetBlock2D.Load(resnets.Push(1), channels, channels, null, groups, Eps));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static UNetMidBlock2D Load(WeightScope scope, int channels, int groups, bool addAttention)
        => new(scope, channels, groups, addAttention);

    /// <summary>x [B, h, w, C] -> [B, h, w, C], a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        using var hidden = _resnet0.Forward(x, null); // [B, h, w, C]
        if (_attention == null) return _resnet1.Forward(hidden, null); // [B, h, w, C]
        using var attended = _attention.Forward(hidden); // [B, h, w, C]
        return _resnet1.Forward(attended, null); // [B, h, w, C]
    }

    public long MultiplyAccumulates(int height, int width)
        => _resnet0.MultiplyAccumulates(height, width) + (_attention?.MultiplyAccumulates(height, width) ?? 0)
           + _resnet1.MultiplyAccumulates(height, width);
}
