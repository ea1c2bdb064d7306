using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>FeedForward</c> with a gated first projection: <c>net.0.proj</c> maps C -> 2 * inner, the first half is
/// the value and the second the gate; out = <c>net.2</c>(value * act(gate)), act = exact GELU (GEGLU, SD) or SiLU
/// (SwiGLU, MobileDiffusion). inner = mult * C. (<c>net.1</c> is diffusers' dropout: no weights.)
/// </summary>
public sealed unsafe class FeedForward : Module
{
    private readonly Linear _proj;
    private readonly Linear _out;

    public int Dim { get; }
    public int InnerDim { get; }
    public GateKind Gate { get; }

    private FeedForward(WeightScope scope, int dim, int mult, GateKind gate)
    {
        Dim = dim;
        InnerDim = dim * mult;
        Gate = gate;
        try
        {
            _proj = Add(Linear.LoadGated(scope.Push("net").Push(0).Push("proj"), dim, InnerDim));
            _out = Add(Linear.Load(scope.Push("net").Push(2), InnerDim, dim));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static FeedForward Load(WeightScope scope, int dim, int mult, GateKind gate) => new(scope, dim, mult, gate);

    /// <summary>x [B, T, C] -> [B, T, C], a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        var output = Tensor.Create(x.Shape); // [B, T, C]
        try
        {
            Forward(x, output);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        return output;
    }

    /// <summary>
    /// output = ff(x) (+ residual, which may be <paramref name="output"/>); output must not overlap x. With
    /// <see cref="Fusion.Geglu"/> the gate runs in the projection GEMM's epilogue (a quantized projection: one gated pass
    /// after it); off, the unfused twin: the projection written out, act(gate) into a tensor, value times that into another.
    /// </summary>
    public void Forward(Tensor x, Tensor output, Tensor? residual = null)
    {
        int rows = checked((int)(x.Length / Dim));
        using var flatOutput = output.Reshape(rows, Dim); // [B*T, C] view
        using var flatResidual = residual?.Reshape(rows, Dim); // [B*T, C] view
        using var gated = Tensor.Create(rows, InnerDim); // [B*T, inner]
        if (Fusions.IsOn(Fusion.Geglu) && _proj.CanGateInEpilogue)
        {
            _proj.ForwardGated(x, gated, Gate); // [B*T, inner]
        }
        else
        {
            // The projection's columns alternate value and gate blocks of w columns: viewed as [B*T*inner/w, 2w].
            using var projected = _proj.Forward(x); // [B, T, 2*inner]
            int w = _proj.GateBlockWidth, blocks = rows * (InnerDim / w);
            if (Fusions.IsOn(Fusion.Geglu))
            {
                Activations.Gated(Gate, projected.Data, blocks, w, gated.Data); // [B*T, inner]
            }
            else
            {
                using var activatedGate = Tensor.Create(rows, InnerDim); // [B*T, inner]
                Activations.ApplyRows(GateActivation, projected.Data + w, 2 * w, blocks, w, activatedGate.Data, w); // [B*T, inner]
                TensorOps.Multiply(projected.Data, 2 * w, activatedGate.Data, w, blocks, w, gated.Data, w); // [B*T, inner]
            }
        }
        _out.Forward(gated, flatOutput, flatResidual); // [B*T, C]
    }

    private ActivationKind GateActivation => Gate == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu;

    public long MultiplyAccumulates(int tokens) => _proj.MultiplyAccumulates(tokens) + _out.MultiplyAccumulates(tokens);
}
