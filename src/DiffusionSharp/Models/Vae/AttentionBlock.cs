using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>
/// The VAE mid-block attention (diffusers <c>Attention</c> in its <c>_from_deprecated_attn_block</c> form, once
/// <c>AttentionBlock</c>): one head over all C channels, a GroupNorm in front (eps 1e-6) and a residual connection:
/// out = x + to_out.0(softmax(q·kᵀ/√C)·v) with q, k, v = to_q/to_k/to_v(group_norm(x)) over the H*W pixels.
/// Keys <c>group_norm</c>, <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>, all with bias. The projections are
/// Linear [C, C] in diffusers files and 1x1 convolutions [C, C, 1, 1] in single-file (LDM) checkpoints: both bind.
/// </summary>
public sealed unsafe class AttentionBlock : Module
{
    private const float Eps = 1e-6f;

    private readonly GroupNorm _groupNorm;
    private readonly Linear _toQ, _toK, _toV, _toOut;

    public int Channels { get; }

    private AttentionBlock(WeightScope scope, int channels, int groups)
    {
        Channels = channels;
        try
        {
            _groupNorm = Add(GroupNorm.Load(scope.Push("group_norm"), groups, channels, Eps));
            _toQ = Add(LoadProjection(scope.Push("to_q"), channels));
            _toK = Add(LoadProjection(scope.Push("to_k"), channels));
            _toV = Add(LoadProjection(scope.Push("to_v"), channels));
            _toOut = Add(LoadProjection(scope.Push("to_out").Push(0), channels));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static AttentionBlock Load(WeightScope scope, int channels, int groups) => new(scope, channels, groups);

    private static Linear LoadProjection(WeightScope scope, int channels)
        => scope.Contains("weight") && scope.ShapeOf("weight").Length == 4
            ? Linear.LoadPointwiseConv(scope, channels, channels)
            : Linear.Load(scope, channels, channels);

    /// <summary>x [B, H, W, C] -> [B, H, W, C], a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[3] != Channels)
            throw new ArgumentException($"VAE attention: input {x} must be [B, H, W, {Channels}].", nameof(x));
        int b = x.Shape[0], tokens = x.Shape[1] * x.Shape[2], c = Channels;
        using var normed = _groupNorm.Forward(x); // [B, H, W, C]
        using var query = _toQ.Forward(normed); // [B, H, W, C]
        using var key = _toK.Forward(normed); // [B, H, W, C]
        using var value = _toV.Forward(normed); // [B, H, W, C]
        using var attended = new Tensor(x.Shape); // [B, H, W, C]
        var ops = new AttentionOperands(query.Data, c, key.Data, c, value.Data, c, attended.Data, c);
        AttentionKernel.Forward(ops, b, heads: 1, tokens, tokens, c, 1f / MathF.Sqrt(c), AttentionActivation.Softmax, causal: false); // [B, H*W, C]
        var output = new Tensor(x.Shape); // [B, H, W, C]
        try
        {
            _toOut.Forward(attended, output, residual: x); // [B, H, W, C]
        }
        catch
        {
            output.Dispose();
            throw;
        }
        return output;
    }

    public long MultiplyAccumulates(int height, int width)
    {
        long tokens = (long)height * width;
        return 4 * _toQ.MultiplyAccumulates(tokens) + 2 * tokens * tokens * Channels;
    }
}
