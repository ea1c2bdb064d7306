using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>CrossAttnUpBlock2D</c>: an <see cref="UpBlock2D"/> whose resnet j is followed by the transformer
/// <c>attentions.{j}</c>.
/// </summary>
public sealed class CrossAttnUpBlock2D : UpBlock2D
{
    private readonly Transformer2DModel[] _attentions;

    public IReadOnlyList<Transformer2DModel> Attentions => _attentions;

    private CrossAttnUpBlock2D(WeightScope scope, UnetConfig config, int level, int inChannels, int prevOutputChannels, bool addUpsample)
        : base(scope, config, level, inChannels, prevOutputChannels, addUpsample)
    {
        try
        {
            var attentions = scope.Push("attentions");
            _attentions = new Transformer2DModel[SkipCount];
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

    public static new CrossAttnUpBlock2D Load(WeightScope scope, UnetConfig config, int level, int inChannels, int prevOutputChannels, bool addUpsample)
        => new(scope, config, level, inChannels, prevOutputChannels, addUpsample);

    protected override Module? ModuleAfterResnet(int j) => _attentions[j];

    protected override void AfterResnet(int j, Tensor hiddenStates, Tensor encoderHiddenStates, IBlockHook? hook)
        => _attentions[j].Forward(hiddenStates, encoderHiddenStates, hiddenStates, hook); // [B, H, W, Cout]

    protected override long AfterResnetMultiplyAccumulates(int j, int height, int width, int contextTokens)
        => _attentions[j].MultiplyAccumulates(height, width, contextTokens);
}
