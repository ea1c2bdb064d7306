using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Clip;

/// <summary>
/// HF transformers <c>CLIPEncoderLayer</c> (pre-LayerNorm), updating the residual stream in place:
/// x += self_attn(layer_norm1(x)); x += mlp(layer_norm2(x)). Keys <c>layer_norm1</c>, <c>self_attn</c>,
/// <c>layer_norm2</c>, <c>mlp</c>.
/// </summary>
public sealed class ClipEncoderLayer : Module
{
    private readonly LayerNorm _layerNorm1;
    private readonly ClipAttention _selfAttn;
    private readonly LayerNorm _layerNorm2;
    private readonly ClipMlp _mlp;

    private ClipEncoderLayer(WeightScope scope, ClipTextConfig config)
    {
        try
        {
            _layerNorm1 = Add(LayerNorm.Load(scope.Push("layer_norm1"), config.HiddenSize, config.LayerNormEps));
            _selfAttn = Add(ClipAttention.Load(scope.Push("self_attn"), config.HiddenSize, config.NumAttentionHeads));
            _layerNorm2 = Add(LayerNorm.Load(scope.Push("layer_norm2"), config.HiddenSize, config.LayerNormEps));
            _mlp = Add(ClipMlp.Load(scope.Push("mlp"), config.HiddenSize, config.IntermediateSize, config.HiddenAct));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static ClipEncoderLayer Load(WeightScope scope, ClipTextConfig config) => new(scope, config);

    /// <summary>hiddenStates [B, T, C] += the layer's two residual branches.</summary>
    public void Forward(Tensor hiddenStates)
    {
        using var normed = _layerNorm1.Forward(hiddenStates); // [B, T, C]
        _selfAttn.Forward(normed, hiddenStates, residual: hiddenStates); // [B, T, C]
        _layerNorm2.Forward(hiddenStates, normed); // [B, T, C]
        _mlp.Forward(normed, hiddenStates, residual: hiddenStates); // [B, T, C]
    }
}
