using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Clip;

/// <summary>HF transformers <c>CLIPMLP</c>: fc2(act(fc1(x))), act = quick_gelu (x·σ(1.702x), CLIP ViT-L/14) or exact GELU.
/// Keys <c>fc1</c>, <c>fc2</c>.</summary>
public sealed unsafe class ClipMlp : Module
{
    private readonly Linear _fc1, _fc2;

    public ActivationKind Activation { get; }

    private ClipMlp(WeightScope scope, int hiddenSize, int intermediateSize, ActivationKind activation)
    {
        Activation = activation;
        try
        {
            _fc1 = Add(Linear.Load(scope.Push("fc1"), hiddenSize, intermediateSize));
            _fc2 = Add(Linear.Load(scope.Push("fc2"), intermediateSize, hiddenSize));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static ClipMlp Load(WeightScope scope, int hiddenSize, int intermediateSize, ActivationKind activation)
        => new(scope, hiddenSize, intermediateSize, activation);

    /// <summary>output = mlp(x) (+ residual, which may be <paramref name="output"/>); x [B, T, C].</summary>
    public void Forward(Tensor x, Tensor output, Tensor? residual = null)
    {
        using var hidden = _fc1.Forward(x); // [B, T, intermediate]
        Activations.Apply(Activation, hidden.Data, hidden.Data, hidden.Length); // [B, T, intermediate]
        _fc2.Forward(hidden, output, residual); // [B, T, C]
    }
}
