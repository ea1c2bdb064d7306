using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>Attention</c> as the UNet's transformer blocks use it: multi-head self-attention (no context) or
/// cross-attention over the text context. Keys <c>to_q</c>, <c>to_k</c>, <c>to_v</c> (no bias), <c>to_out.0</c> (bias);
/// with the shared K/V option (ours, MobileDiffusion) one <c>to_kv</c> replaces to_k and to_v and K = V.
/// Weights per head: softmax(q·kᵀ/√d), or MobileDiffusion's relu(q·kᵀ/√d) / Tk (<see cref="AttentionActivation"/>).
/// </summary>
public sealed unsafe class Attention : Module
{
    private readonly Linear _toQ;
    private readonly Linear? _toK, _toV, _toKv;
    private readonly Linear _toOut;

    public int QueryDim { get; }
    public int ContextDim { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    public AttentionActivation Activation { get; }
    public int InnerDim => Heads * HeadDim;

    private Attention(WeightScope scope, int queryDim, int heads, int headDim, int? crossAttentionDim, bool sharedKv, AttentionActivation activation)
    {
        QueryDim = queryDim;
        ContextDim = crossAttentionDim ?? queryDim;
        Heads = heads;
        HeadDim = headDim;
        Activation = activation;
        int inner = heads * headDim;
        try
        {
            _toQ = Add(Linear.Load(scope.Push("to_q"), queryDim, inner, bias: false));
            if (sharedKv)
            {
                _toKv = Add(Linear.Load(scope.Push("to_kv"), ContextDim, inner, bias: false));
            }
            else
            {
                _toK = Add(Linear.Load(scope.Push("to_k"), ContextDim, inner, bias: false));
                _toV = Add(Linear.Load(scope.Push("to_v"), ContextDim, inner, bias: false));
            }
            _toOut = Add(Linear.Load(scope.Push("to_out").Push(0), inner, queryDim));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Self-attention when <paramref name="crossAttentionDim"/> is null, else cross-attention over a context of that width.</summary>
    public static Attention Load(WeightScope scope, int queryDim, int heads, int headDim, int? crossAttentionDim,
        bool sharedKv = false, AttentionActivation activation = AttentionActivation.Softmax)
        => new(scope, queryDim, heads, headDim, crossAttentionDim, sharedKv, activation);

    /// <summary>hiddenStates [B, Tq, C], encoderHiddenStates [B, Tk, Cctx] (null: self-attention) -> [B, Tq, C], a new tensor.</summary>
    public Tensor Forward(Tensor hiddenStates, Tensor? encoderHiddenStates)
    {
        var output = Tensor.Create(hiddenStates.Shape); // [B, Tq, C]
        try
        {
            Forward(hiddenStates, encoderHiddenStates, output);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        return output;
    }

    /// <summary>output = attention(hiddenStates, context) (+ residual; <paramref name="residual"/> may be <paramref name="output"/>).
    /// <paramref name="output"/> must not overlap <paramref name="hiddenStates"/> unless it is also the residual.</summary>
    public void Forward(Tensor hiddenStates, Tensor? encoderHiddenStates, Tensor output, Tensor? residual = null)
    {
        if (hiddenStates.Rank != 3 || hiddenStates.Shape[2] != QueryDim)
            throw new ArgumentException($"Attention: hidden states {hiddenStates} must be [B, T, {QueryDim}].", nameof(hiddenStates));
        var context = encoderHiddenStates ?? hiddenStates;
        if (context.Rank != 3 || context.Shape[0] != hiddenStates.Shape[0] || context.Shape[2] != ContextDim)
            throw new ArgumentException($"Attention: context {context} must be [{hiddenStates.Shape[0]}, T, {ContextDim}].", nameof(encoderHiddenStates));
        int batch = hiddenStates.Shape[0], tq = hiddenStates.Shape[1], tk = context.Shape[1], inner = InnerDim;

        using var query = _toQ.Forward(hiddenStates); // [B, Tq, inner]
        using var key = (_toKv ?? _toK)!.Forward(context); // [B, Tk, inner]
        using var value = _toV?.Forward(context); // [B, Tk, inner], or K itself when shared
        using var attended = Tensor.Create(batch, tq, inner); // [B, Tq, inner]
        var v = value ?? key;
        var ops = new AttentionOperands(query.Data, inner, key.Data, inner, v.Data, inner, attended.Data, inner);
        long profile = OpProfiler.Start();
        AttentionKernel.Forward(ops, batch, Heads, tq, tk, HeadDim, 1f / MathF.Sqrt(HeadDim), Activation, causal: false); // [B, Tq, inner]
        OpProfiler.Stop(profile, "attention", (long)batch * Heads * tq, tk, HeadDim, 2L * batch * Heads * tq * tk * HeadDim);
        _toOut.Forward(attended, output, residual); // [B, Tq, C]
    }

    /// <summary>Multiply-accumulates for one batch item: projections plus the two per-head products (q·kᵀ and w·v).</summary>
    public long MultiplyAccumulates(int queryTokens, int contextTokens)
    {
        long kv = _toKv != null ? _toKv.MultiplyAccumulates(contextTokens) : 2 * _toK!.MultiplyAccumulates(contextTokens);
        return _toQ.MultiplyAccumulates(queryTokens) + kv + 2L * queryTokens * contextTokens * InnerDim
            + _toOut.MultiplyAccumulates(queryTokens);
    }
}
