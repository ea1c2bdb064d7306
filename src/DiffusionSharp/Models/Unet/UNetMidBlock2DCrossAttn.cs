using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>UNetMidBlock2DCrossAttn</c> (num_layers 1): <c>resnets.0</c> -> <c>attentions.0</c> -> <c>resnets.1</c>
/// at the lowest resolution. Its transformer always has self-attention; its depth is mid_block_transformer_layers and
/// its convolutions follow the last level's separable setting.
/// </summary>
public sealed class UNetMidBlock2DCrossAttn : Module
{
    private readonly ResnetBlock2D _resnet0;
    private readonly Transformer2DModel _attention;
    private readonly ResnetBlock2D _resnet1;

    public int Channels { get; }
    /// <summary>resnets.0, attentions.0, resnets.1: the hooked blocks in execution order.</summary>
    public IReadOnlyList<Module> Blocks => [_resnet0, _attention, _resnet1];

    private UNetMidBlock2DCrossAttn(WeightScope scope, UnetConfig config)
    {
        Channels = config.BlockOutChannels[^1];
        bool separable = config.SeparableConvPerBlock[^1];
        try
        {
            var resnets = scope.Push("resnets");
            _resnet0 = Add(ResnetBlock2D.Load(resnets.Push(0), Channels, Channels, config.TimeEmbedDim, config.NormNumGroups, config.NormEps, separable));
            _attention = Add(Transformer2DModel.Load(scope.Push("attentions").Push(0), config, Channels, config.AttentionHeads[^1],
                config.MidBlockTransformerLayers, selfAttention: true));
            _resnet1 = Add(ResnetBlock2D.Load(resnets.Push(1), Channels, Channels, config.TimeEmbedDim, config.NormNumGroups, config.NormEps, separable));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static UNetMidBlock2DCrossAttn Load(WeightScope scope, UnetConfig config) => new(scope, config);

    /// <summary>hiddenStates [B, h, w, C] -> [B, h, w, C], a new tensor; <paramref name="hook"/> sees all three blocks.</summary>
    public Tensor Forward(Tensor hiddenStates, Tensor temb, Tensor encoderHiddenStates, IBlockHook? hook = null)
    {
        using var hidden = _resnet0.Forward(hiddenStates, temb, hook); // [B, h, w, C]
        _attention.Forward(hidden, encoderHiddenStates, hidden, hook); // [B, h, w, C]
        return _resnet1.Forward(hidden, temb, hook); // [B, h, w, C]
    }

    public long MultiplyAccumulates(int height, int width, int contextTokens)
        => _resnet0.MultiplyAccumulates(height, width) + _attention.MultiplyAccumulates(height, width, contextTokens)
           + _resnet1.MultiplyAccumulates(height, width);
}
