using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>ResnetBlock2D</c> (time_embedding_norm "default", output_scale_factor 1, SiLU), shared by the UNet
/// and the VAE:
/// <code>
/// h = conv1(silu(norm1(x)))
/// h = h + time_emb_proj(silu(temb))          (per channel, broadcast over pixels; only with a time embedding)
/// h = conv2(silu(norm2(h)))
/// out = conv_shortcut(x) + h                 (conv_shortcut: 1x1, only when Cin != Cout)
/// </code>
/// Keys <c>norm1</c>, <c>conv1</c>, <c>time_emb_proj</c>, <c>norm2</c>, <c>conv2</c>, <c>conv_shortcut</c>. With separable
/// convolutions (ours, MobileDiffusion) conv1 and conv2 are <see cref="DepthwiseSeparableConv2d"/>.
/// </summary>
public sealed unsafe class ResnetBlock2D : Module
{
    private readonly GroupNorm _norm1;
    private readonly IConvolution _conv1;
    private readonly Linear? _timeEmbProj;
    private readonly GroupNorm _norm2;
    private readonly IConvolution _conv2;
    private readonly Linear? _convShortcut;

    public int InChannels { get; }
    public int OutChannels { get; }
    /// <summary>The checkpoint key prefix the block was bound under (<c>down_blocks.1.resnets.0</c>).</summary>
    public string Key { get; }

    private ResnetBlock2D(WeightScope scope, int inChannels, int outChannels, int? tembChannels, int groups, float eps, bool separable)
    {
        Key = scope.Prefix.TrimEnd('.');
        InChannels = inChannels;
        OutChannels = outChannels;
        try
        {
            _norm1 = Add(GroupNorm.Load(scope.Push("norm1"), groups, inChannels, eps));
            _conv1 = AddConvolution(scope.Push("conv1"), inChannels, outChannels, separable);
            if (tembChannels is { } t) _timeEmbProj = Add(Linear.Load(scope.Push("time_emb_proj"), t, outChannels));
            _norm2 = Add(GroupNorm.Load(scope.Push("norm2"), groups, outChannels, eps));
            _conv2 = AddConvolution(scope.Push("conv2"), outChannels, outChannels, separable);
            if (inChannels != outChannels) _convShortcut = Add(Linear.LoadPointwiseConv(scope.Push("conv_shortcut"), inChannels, outChannels));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary><paramref name="tembChannels"/> null: no time embedding (the VAE). UNet eps = norm_eps (1e-5); VAE eps 1e-6.</summary>
    public static ResnetBlock2D Load(WeightScope scope, int inChannels, int outChannels, int? tembChannels, int groups, float eps, bool separable = false)
        => new(scope, inChannels, outChannels, tembChannels, groups, eps, separable);

    private IConvolution AddConvolution(WeightScope scope, int inChannels, int outChannels, bool separable)
        => separable
            ? Add(DepthwiseSeparableConv2d.Load(scope, inChannels, outChannels))
            : Add(Conv2d.Load(scope, inChannels, outChannels, kernelSize: 3, padding: 1));

    /// <summary>
    /// x [B, H, W, Cin], temb [B, Temb] (null without a time embedding) -> [B, H, W, Cout], a new tensor. With a
    /// <paramref name="hook"/> the block may instead be skipped, its output then being shortcut(x) + a residual the hook
    /// supplies (<see cref="IBlockHook"/>); the shortcut (x, or conv_shortcut(x)) is computed either way.
    /// Without a hook, or when the hook lets the block run, the result is bit for bit the plain block's.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? temb, IBlockHook? hook = null)
    {
        if (x.Rank != 4 || x.Shape[3] != InChannels)
            throw new ArgumentException($"ResnetBlock2D {InChannels}->{OutChannels}: input {x} must be [B, H, W, {InChannels}].", nameof(x));
        if ((temb != null) != (_timeEmbProj != null))
            throw new ArgumentException(_timeEmbProj != null ? "This ResnetBlock2D needs a time embedding." : "This ResnetBlock2D has no time embedding projection.", nameof(temb));
        int b = x.Shape[0], pixels = x.Shape[1] * x.Shape[2];
        if (_timeEmbProj != null && (temb!.Rank != 2 || temb.Shape[0] != b))
            throw new ArgumentException($"ResnetBlock2D: time embedding {temb} must be [{b}, {_timeEmbProj.InFeatures}].", nameof(temb));

        var action = hook?.Begin(this) ?? BlockAction.Compute;
        Tensor? shortcut = null;
        Tensor? output = null;
        try
        {
            if (action == BlockAction.Reuse)
            {
                shortcut = _convShortcut?.Forward(x); // [B, H, W, Cout]
                output = Tensor.Create(b, x.Shape[1], x.Shape[2], OutChannels); // [B, H, W, Cout]
                hook!.Reuse(this, shortcut ?? x, output); // [B, H, W, Cout]
                return output;
            }
            output = Branch(x, temb, b, pixels, out shortcut); // [B, H, W, Cout]
            if (action == BlockAction.Record) hook!.Record(this, shortcut ?? x, output);
            return output;
        }
        catch
        {
            output?.Dispose();
            throw;
        }
        finally
        {
            shortcut?.Dispose();
        }
    }

    /// <summary>
    /// conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(temb))))) + shortcut, the time embedding a per-image bias
    /// of conv1's epilogue (<see cref="Fusion.TimestepEmbedding"/>; off: a broadcast add pass after conv1) and the residual
    /// add fused into conv2; <paramref name="shortcut"/> receives conv_shortcut(x) (null when x is its own shortcut),
    /// computed only once the input-width activations are freed.
    /// </summary>
    private Tensor Branch(Tensor x, Tensor? temb, int b, int pixels, out Tensor? shortcut)
    {
        shortcut = null;
        Tensor hidden;
        using (var timeBias = _timeEmbProj != null ? TimeBias(temb!) : null) // [B, Cout]
        using (var normed = _norm1.Forward(x, silu: true)) // [B, H, W, Cin]
        {
            if (timeBias != null && Fusions.IsOn(Fusion.TimestepEmbedding))
            {
                hidden = _conv1.ForwardWithImageBias(normed, timeBias); // [B, H, W, Cout]
            }
            else
            {
                hidden = _conv1.Forward(normed); // [B, H, W, Cout]
                if (timeBias != null)
                    for (int i = 0; i < b; i++)
                        TensorOps.AddRowVector(hidden.Data + (long)i * pixels * OutChannels, pixels, OutChannels, timeBias.Data + (long)i * OutChannels); // [B, H, W, Cout]
            }
        }
        using (hidden)
        {
            _norm2.Forward(hidden, hidden, silu: true); // [B, H, W, Cout]
            if (_convShortcut == null) return _conv2.Forward(hidden, residual: x); // [B, H, W, Cout]
            shortcut = _convShortcut.Forward(x); // [B, H, W, Cout]
            return _conv2.Forward(hidden, residual: shortcut); // [B, H, W, Cout]
        }
    }

    /// <summary>time_emb_proj(silu(temb)): temb [B, Temb] -> [B, Cout], a new tensor.</summary>
    private Tensor TimeBias(Tensor temb)
    {
        using var activated = Tensor.Create(temb.Shape); // [B, Temb]
        Activations.Apply(ActivationKind.Silu, temb.Data, activated.Data, temb.Length); // [B, Temb]
        return _timeEmbProj!.Forward(activated); // [B, Cout]
    }

    /// <summary>Multiply-accumulates of the part that still runs when the block is skipped: conv_shortcut, if any.</summary>
    public long ShortcutMultiplyAccumulates(int height, int width) => _convShortcut?.MultiplyAccumulates((long)height * width) ?? 0;

    public long MultiplyAccumulates(int height, int width)
    {
        long pixels = (long)height * width;
        return _conv1.MultiplyAccumulates(height, width) + _conv2.MultiplyAccumulates(height, width)
            + (_convShortcut?.MultiplyAccumulates(pixels) ?? 0) + (_timeEmbProj?.MultiplyAccumulates(1) ?? 0);
    }
}
