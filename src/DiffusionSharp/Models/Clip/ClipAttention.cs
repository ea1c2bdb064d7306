using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Clip;

/// <summary>
/// HF transformers <c>CLIPAttention</c> with the text tower's causal mask: multi-head self-attention where token i
/// attends to tokens 0..i. Keys <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>out_proj</c>, all with bias; scale 1/√d.
/// </summary>
public sealed unsafe class ClipAttention : Module
{
    private readonly Linear _qProj, _kProj, _vProj, _outProj;

    public int EmbedDim { get; }
    public int Heads { get; }
    public int HeadDim => EmbedDim / Heads;

    private ClipAttention(WeightScope scope, int embedDim, int heads)
    {
        EmbedDim = embedDim;
        Heads = heads;
        try
        {
            _qProj = Add(Linear.Load(scope.Push("q_proj"), embedDim, embedDim));
            _kProj = Add(Linear.Load(scope.Push("k_proj"), embedDim, embedDim));
            _vProj = Add(Linear.Load(scope.Push("v_proj"), embedDim, embedDim));
            _outProj = Add(Linear.Load(scope.Push("out_proj"), embedDim, embedDim));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static ClipAttention Load(WeightScope scope, int embedDim, int heads) => new(scope, embedDim, heads);

    /// <summary>output = attention(hiddenStates) (+ residual, which may be <paramref name="output"/>); hiddenStates [B, T, C].</summary>
    public void Forward(Tensor hiddenStates, Tensor output, Tensor? residual = null)
    {
        if (hiddenStates.Rank != 3 || hiddenStates.Shape[2] != EmbedDim)
            throw new ArgumentException($"CLIP attention: input {hiddenStates} must be [B, T, {EmbedDim}].", nameof(hiddenStates));
        int b = hiddenStates.Shape[0], t = hiddenStates.Shape[1];
        using var query = _qProj.Forward(hiddenStates); // [B, T, C]
        using var key = _kProj.Forward(hiddenStates); // [B, T, C]
        using var value = _vProj.Forward(hiddenStates); // [B, T, C]
        using var attended = new Tensor(b, t, EmbedDim); // [B, T, C]
        var ops = new AttentionOperands(query.Data, EmbedDim, key.Data, EmbedDim, value.Data, EmbedDim, attended.Data, EmbedDim);
        AttentionKernel.Forward(ops, b, Heads, t, t, HeadDim, 1f / MathF.Sqrt(HeadDim), AttentionActivation.Softmax, causal: true); // [B, T, C]
        _outProj.Forward(attended, output, residual); // [B, T, C]
    }
}
