using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>BasicTransformerBlock</c> (layer-norm variant, eps 1e-5), updating the residual stream in place:
/// x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x)).
/// Without self-attention (ours, MobileDiffusion's cross-attention-only blocks) norm1/attn1 are absent and the other
/// keys keep their names.
/// </summary>
public sealed class BasicTransformerBlock : Module
{
    private const float Eps = 1e-5f;

    private readonly LayerNorm? _norm1;
    private readonly Attention? _attn1;
    private readonly LayerNorm _norm2;
    private readonly Attention _attn2;
    private readonly LayerNorm _norm3;
    private readonly FeedForward _ff;

    public int Dim { get; }
    public bool HasSelfAttention => _attn1 != null;

    private BasicTransformerBlock(WeightScope scope, UnetConfig config, int dim, int heads, bool selfAttention)
    {
        Dim = dim;
        int headDim = dim / heads;
        try
        {
            if (selfAttention)
            {
                _norm1 = Add(LayerNorm.Load(scope.Push("norm1"), dim, Eps));
                _attn1 = Add(Attention.Load(scope.Push("attn1"), dim, heads, headDim, null, config.SharedKvProjection, config.AttentionActivation));
            }
            _norm2 = Add(LayerNorm.Load(scope.Push("norm2"), dim, Eps));
            _attn2 = Add(Attention.Load(scope.Push("attn2"), dim, heads, headDim, config.CrossAttentionDim, config.SharedKvProjection, config.AttentionActivation));
            _norm3 = Add(LayerNorm.Load(scope.Push("norm3"), dim, Eps));
            _ff = Add(FeedForward.Load(scope.Push("ff"), dim, config.FeedForwardMult, config.FeedForwardActivation));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static BasicTransformerBlock Load(WeightScope scope, UnetConfig config, int dim, int heads, bool selfAttention)
        => new(scope, config, dim, heads, selfAttention);

    /// <summary>hiddenStates [B, T, C] += the block's three residual branches; encoderHiddenStates [B, Tctx, Cctx].</summary>
    public void Forward(Tensor hiddenStates, Tensor encoderHiddenStates)
    {
        using var normed = Tensor.Create(hiddenStates.Shape); // [B, T, C]
        if (_attn1 != null)
        {
            _norm1!.Forward(hiddenStates, normed); // [B, T, C]
            _attn1.Forward(normed, null, hiddenStates, residual: hiddenStates); // [B, T, C]
        }
        _norm2.Forward(hiddenStates, normed); // [B, T, C]
        _attn2.Forward(normed, encoderHiddenStates, hiddenStates, residual: hiddenStates); // [B, T, C]
        _norm3.Forward(hiddenStates, normed); // [B, T, C]
        _ff.Forward(normed, hiddenStates, residual: hiddenStates); // [B, T, C]
    }

    public long MultiplyAccumulates(int tokens, int contextTokens)
        => (_attn1?.MultiplyAccumulates(tokens, tokens) ?? 0) + _attn2.MultiplyAccumulates(tokens, contextTokens) + _ff.MultiplyAccumulates(tokens);
}
