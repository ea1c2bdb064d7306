using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>PyTorch <c>nn.LayerNorm</c> over the last dimension (affine). Keys <c>weight</c> [C], <c>bias</c> [C].</summary>
public sealed unsafe class LayerNorm : Module
{
    private readonly float[] _weight;
    private readonly float[] _bias;

    public int Channels { get; }
    public float Eps { get; }

    private LayerNorm(WeightScope scope, int channels, float eps)
    {
        Channels = channels;
        Eps = eps;
        _weight = scope.Require("weight", channels);
        _bias = scope.Require("bias", channels);
    }

    public static LayerNorm Load(WeightScope scope, int channels, float eps) => new(scope, channels, eps);

    /// <summary>x [..., C] -> same shape, a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        var y = Tensor.Create(x.Shape); // [..., C]
        try
        {
            Forward(x, y);
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    /// <summary>Writes the result into <paramref name="output"/> (which may be <paramref name="x"/>).</summary>
    public void Forward(Tensor x, Tensor output)
    {
        if (x.Rank == 0 || x.Shape[^1] != Channels)
            throw new ArgumentException($"LayerNorm over {Channels} channels: input {x} must end in {Channels}.", nameof(x));
        if (!output.ShapeEquals(x.Shape))
            throw new ArgumentException($"LayerNorm: output {output} does not match input {x}.", nameof(output));
        int rows = checked((int)(x.Length / Channels));
        long profile = OpProfiler.Start();
        fixed (float* gamma = _weight, beta = _bias)
            LayerNormKernel.Forward(x.Data, rows, Channels, Eps, gamma, beta, output.Data); // [..., C]
        OpProfiler.Stop(profile, "layernorm", rows, Channels, 0, 0);
    }

    protected override long OwnParameterCount => 2L * Channels;
}
