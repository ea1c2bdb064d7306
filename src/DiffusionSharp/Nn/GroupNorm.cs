using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>
/// PyTorch <c>nn.GroupNorm</c> (affine) on channels-last tensors [B, ..., C], optionally fused with the SiLU that
/// follows it almost everywhere in the UNet and VAE. Keys <c>weight</c> [C], <c>bias</c> [C].
/// </summary>
public sealed unsafe class GroupNorm : Module
{
    private readonly float[] _weight;
    private readonly float[] _bias;

    public int Groups { get; }
    public int Channels { get; }
    public float Eps { get; }

    private GroupNorm(WeightScope scope, int groups, int channels, float eps)
    {
        if (groups <= 0 || channels % groups != 0)
            throw new ArgumentException($"GroupNorm '{scope}': {channels} channels cannot be split into {groups} groups.");
        Groups = groups;
        Channels = channels;
        Eps = eps;
        _weight = scope.Require("weight", channels);
        _bias = scope.Require("bias", channels);
    }

    public static GroupNorm Load(WeightScope scope, int groups, int channels, float eps) => new(scope, groups, channels, eps);

    /// <summary>x [B, ..., C] -> normalised (then SiLU when <paramref name="silu"/>), same shape, a new tensor.</summary>
    public Tensor Forward(Tensor x, bool silu = false)
    {
        var y = Tensor.Create(x.Shape); // [B, ..., C]
        try
        {
            Forward(x, y, silu);
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    /// <summary>Writes the result into <paramref name="output"/> (which may be <paramref name="x"/>).</summary>
    public void Forward(Tensor x, Tensor output, bool silu = false)
    {
        if (x.Rank < 2 || x.Shape[^1] != Channels)
            throw new ArgumentException($"GroupNorm over {Channels} channels: input {x} must be [B, ..., {Channels}].", nameof(x));
        if (!output.ShapeEquals(x.Shape))
            throw new ArgumentException($"GroupNorm: output {output} does not match input {x}.", nameof(output));
        int batch = x.Shape[0];
        int spatial = checked((int)(x.Length / ((long)batch * Channels)));
        long profile = OpProfiler.Start();
        fixed (float* gamma = _weight, beta = _bias)
        {
            if (silu && !Fusions.IsOn(Fusion.GroupNormSilu))
            {
                using var normed = Tensor.Create(x.Shape); // [B, ..., C]: the intermediate a naive engine writes
                GroupNormKernel.ForwardUnfused(x.Data, batch, spatial, Channels, Groups, Eps, gamma, beta, normed.Data, output.Data); // [B, ..., C]
            }
            else
            {
                GroupNormKernel.Forward(x.Data, batch, spatial, Channels, Groups, Eps, gamma, beta, output.Data, silu); // [B, ..., C]
            }
        }
        OpProfiler.Stop(profile, silu ? "groupnorm+silu" : "groupnorm", (long)batch * spatial, Channels, 0, 0);
    }

    protected override long OwnParameterCount => 2L * Channels;
}
