using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>UpBlock2D</c>: layers_per_block + 1 resnets, each over the channel concatenation [hidden | skip] with
/// the skips taken from the down path last-first, then an optional <c>upsamplers.0</c>. Resnet j's input channels are
/// (prev_output_channels if j == 0 else Cout) + (in_channels if j is the last else Cout), as in diffusers.
/// <see cref="CrossAttnUpBlock2D"/> adds a transformer after each resnet.
/// </summary>
public unsafe class UpBlock2D : Module
{
    private readonly ResnetBlock2D[] _resnets;
    private readonly Upsample2D? _upsampler;

    public int OutChannels { get; }
    public IReadOnlyList<ResnetBlock2D> Resnets => _resnets;

    /// <summary>Skip tensors this block consumes: one per resnet.</summary>
    public int SkipCount => _resnets.Length;

    /// <summary>The up block of resolution level <c>level</c> (up block i is level levels-1-i). <c>inChannels</c>: channels
    /// of the block's last skip (block_out_channels of the level above, as diffusers names it); <c>prevOutputChannels</c>:
    /// channels of the hidden state from the previous up block (or the mid block).</summary>
    protected UpBlock2D(WeightScope scope, UnetConfig config, int level, int inChannels, int prevOutputChannels, bool addUpsample)
    {
        OutChannels = config.BlockOutChannels[level];
        try
        {
            var resnets = scope.Push("resnets");
            _resnets = new ResnetBlock2D[config.LayersPerBlock[level] + 1];
            for (int j = 0; j < _resnets.Length; j++)
            {
                int skipChannels = j == _resnets.Length - 1 ? inChannels : OutChannels;
                int resnetInChannels = j == 0 ? prevOutputChannels : OutChannels;
                _resnets[j] = Add(ResnetBlock2D.Load(resnets.Push(j), resnetInChannels + skipChannels, OutChannels,
                    config.TimeEmbedDim, config.NormNumGroups, config.NormEps, config.SeparableConvPerBlock[level]));
            }
            if (addUpsample) _upsampler = Add(Upsample2D.Load(scope.Push("upsamplers").Push(0), OutChannels));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static UpBlock2D Load(WeightScope scope, UnetConfig config, int level, int inChannels, int prevOutputChannels, bool addUpsample)
        => new(scope, config, level, inChannels, prevOutputChannels, addUpsample);

    /// <summary>
    /// hiddenStates [B, H, W, Cprev] (not consumed); <paramref name="skips"/>: this block's <see cref="SkipCount"/> skip
    /// tensors in down-path order, consumed last-first (not disposed here). Returns [B, H, W, Cout], or upsampled to
    /// <paramref name="upsampleSize"/> (default 2H x 2W) when the block has an upsampler; a new tensor.
    /// <paramref name="hook"/> sees every resnet and transformer (<see cref="IBlockHook"/>).
    /// </summary>
    public Tensor Forward(Tensor hiddenStates, ReadOnlySpan<Tensor> skips, Tensor temb, Tensor encoderHiddenStates,
        (int Height, int Width)? upsampleSize = null, IBlockHook? hook = null)
    {
        if (skips.Length != SkipCount)
            throw new ArgumentException($"This up block takes {SkipCount} skip tensors, got {skips.Length}.", nameof(skips));
        Tensor? hidden = null;
        try
        {
            for (int j = 0; j < _resnets.Length; j++)
            {
                var input = hidden ?? hiddenStates;
                var skip = skips[skips.Length - 1 - j]; // [B, H, W, Cskip]
                if (skip.Rank != 4 || input.Rank != 4 || skip.Shape[0] != input.Shape[0] || skip.Shape[1] != input.Shape[1] || skip.Shape[2] != input.Shape[2])
                    throw new ArgumentException($"Up block: skip {skip} does not match hidden states {input}.", nameof(skips));
                int b = input.Shape[0], h = input.Shape[1], w = input.Shape[2], ci = input.Shape[3], cs = skip.Shape[3];
                using (var concatenated = Tensor.Create(b, h, w, ci + cs)) // [B, H, W, Cin + Cskip]
                {
                    TensorOps.ConcatChannels(input.Data, ci, skip.Data, cs, (long)b * h * w, concatenated.Data); // [B, H, W, Cin + Cskip]
                    var next = _resnets[j].Forward(concatenated, temb, hook); // [B, H, W, Cout]
                    hidden?.Dispose();
                    hidden = next;
                }
                AfterResnet(j, hidden, encoderHiddenStates, hook); // [B, H, W, Cout]
            }
            if (_upsampler == null) return hidden!;
            using (hidden) return _upsampler.Forward(hidden!, upsampleSize); // [B, Ho, Wo, Cout]
        }
        catch
        {
            hidden?.Dispose();
            throw;
        }
    }

    /// <summary>The hooked blocks (<see cref="IBlockHook"/>) in execution order: each resnet, then what follows it.</summary>
    public IReadOnlyList<Module> Blocks => HookedBlock.InOrder(_resnets, ModuleAfterResnet);

    /// <summary>The module <see cref="AfterResnet"/> runs after resnet <paramref name="j"/> (none in a plain UpBlock2D).</summary>
    protected virtual Module? ModuleAfterResnet(int j) => null;

    /// <summary>Runs whatever follows resnet <paramref name="j"/>, in place on its output (nothing in a plain UpBlock2D).</summary>
    protected virtual void AfterResnet(int j, Tensor hiddenStates, Tensor encoderHiddenStates, IBlockHook? hook)
    {
    }

    protected virtual long AfterResnetMultiplyAccumulates(int j, int height, int width, int contextTokens) => 0;

    /// <summary>Multiply-accumulates at an input of <paramref name="height"/> x <paramref name="width"/> upsampled to
    /// <paramref name="upsampleSize"/>.</summary>
    public long MultiplyAccumulates(int height, int width, (int Height, int Width) upsampleSize, int contextTokens)
    {
        long macs = 0;
        for (int j = 0; j < _resnets.Length; j++)
            macs += _resnets[j].MultiplyAccumulates(height, width) + AfterResnetMultiplyAccumulates(j, height, width, contextTokens);
        return macs + (_upsampler?.MultiplyAccumulates(upsampleSize.Height, upsampleSize.Width) ?? 0);
    }
}
