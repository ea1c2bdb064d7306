using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>CrossAttnDownBlock2D</c>: a <see cref="DownBlock2D"/> whose resnet j is followed by the transformer
/// <c>attentions.{j}</c> (<see cref="Transformer2DModel"/>, depth transformer_layers_per_block[level]).
/// </summary>
public sealed class CrossAttnDownBlock2D : DownBlock2D
{
    private readonly Transformer2DModel[] _attentions;

    public IReadOnlyList<Transformer2DModel> Attentions => _attentions;

    private CrossAttnDownBlock2D(WeightScope scope, UnetConfig config, int level, int inChannels, bool addDownsample)
        : base(scope, config, level, inChannels, addDownsample)
    {
        try
        {
            var attentions = scope.Push("attentions");
            _attentions = new Transformer2DModel[config.LayersPerBlock[level]];
            for (int j = 0; j < _attentions.Length; j++)
                _attentions[j] = Add(Transformer2DModel.Load(attentions.Push(j), config, OutChannels, config.AttentionHeads[level],
                    config.TransformerLayersPerBlock[level], config.SelfAttentionPerBlock[level]));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static new CrossAttnDownBlock2D Load(WeightScope scope, UnetConfig config, int level, int inChannels, bool addDownsample)
        => new(scope, config, level, inChannels, addDownsample);

    protected override Module? ModuleAfterResnet(int j) => _attentions[j];

    protected override void AfterResnet(int j, Tensor hiddenStates, Tensor encoderHiddenStates, IBlockHook? hook)
        => _attentions[j].Forward(hiddenStates, encoderHiddenStates, hiddenStates, hook); // [B, H, W, Cout]

    protected override long AfterResnetMultiplyAccumulates(int j, int height, int width, int contextTokens)
        => _attentions[j].MultiplyAccumulates(height, width, contextTokens);
}
