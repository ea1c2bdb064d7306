using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>TimestepEmbedding</c>: linear_2(silu(linear_1(sample + cond_proj(condition)))). Keys <c>linear_1</c>,
/// <c>linear_2</c>, and <c>cond_proj</c> (no bias) when the model takes a guidance condition (time_cond_proj_dim).
/// </summary>
public sealed unsafe class TimestepEmbedding : Module
{
    private readonly Linear _linear1;
    private readonly Linear _linear2;
    private readonly Linear? _condProj;

    public int InChannels { get; }
    public int TimeEmbedDim { get; }
    public int? CondProjDim => _condProj?.InFeatures;

    private TimestepEmbedding(WeightScope scope, int inChannels, int timeEmbedDim, int? condProjDim)
    {
        InChannels = inChannels;
        TimeEmbedDim = timeEmbedDim;
        try
        {
            _linear1 = Add(Linear.Load(scope.Push("linear_1"), inChannels, timeEmbedDim));
            _linear2 = Add(Linear.Load(scope.Push("linear_2"), timeEmbedDim, timeEmbedDim));
            if (condProjDim is { } c) _condProj = Add(Linear.Load(scope.Push("cond_proj"), c, inChannels, bias: false));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static TimestepEmbedding Load(WeightScope scope, int inChannels, int timeEmbedDim, int? condProjDim = null)
        => new(scope, inChannels, timeEmbedDim, condProjDim);

    /// <summary>sample [B, in], condition [B, cond_proj_dim] or null -> [B, time_embed_dim], a new tensor.</summary>
    public Tensor Forward(Tensor sample, Tensor? condition = null)
    {
        if (condition != null && _condProj == null)
            throw new ArgumentException("A guidance condition was given, but the model has no time_cond_proj_dim.", nameof(condition));
        using var conditioned = condition != null ? Tensor.Create(sample.Shape) : null; // [B, in]
        if (conditioned != null) _condProj!.Forward(condition!, conditioned, residual: sample); // [B, in]
        using var hidden = _linear1.Forward(conditioned ?? sample); // [B, Temb]
        Activations.Apply(ActivationKind.Silu, hidden.Data, hidden.Data, hidden.Length); // [B, Temb]
        return _linear2.Forward(hidden); // [B, Temb]
    }

    public long MultiplyAccumulates()
        => _linear1.MultiplyAccumulates(1) + _linear2.MultiplyAccumulates(1) + (_condProj?.MultiplyAccumulates(1) ?? 0);
}
