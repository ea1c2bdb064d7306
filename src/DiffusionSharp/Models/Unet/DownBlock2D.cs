using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>DownBlock2D</c>: <c>resnets.{j}</c> then an optional <c>downsamplers.0</c> (3x3 stride 2, padding 1).
/// Every resnet output and the downsampler output are handed to the up path as skip connections.
/// <see cref="CrossAttnDownBlock2D"/> adds a transformer after each resnet.
/// </summary>
public class DownBlock2D : Module
{
    private readonly ResnetBlock2D[] _resnets;
    private readonly Downsample2D? _downsampler;

    public int InChannels { get; }
    public int OutChannels { get; }
    public IReadOnlyList<ResnetBlock2D> Resnets => _resnets;

    protected DownBlock2D(WeightScope scope, UnetConfig config, int level, int inChannels, bool addDownsample)
    {
        InChannels = inChannels;
        OutChannels = config.BlockOutChannels[level];
        try
        {
            var resnets = scope.Push("resnets");
            _resnets = new ResnetBlock2D[config.LayersPerBlock[level]];
            for (int j = 0; j < _resnets.Length; j++)
                _resnets[j] = Add(ResnetBlock2D.Load(resnets.Push(j), j == 0 ? inChannels : OutChannels, OutChannels,
                    config.TimeEmbedDim, config.NormNumGroups, config.NormEps, config.SeparableConvPerBlock[level]));
            if (addDownsample) _downsampler = Add(Downsample2D.Load(scope.Push("downsamplers").Push(0), OutChannels, padding: 1));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The block of level <paramref name="level"/> of <paramref name="config"/>.</summary>
    public static DownBlock2D Load(WeightScope scope, UnetConfig config, int level, int inChannels, bool addDownsample)
        => new(scope, config, level, inChannels, addDownsample);

    /// <summary>How many states <see cref="Forward"/> hands to the up path: one per resnet, plus the downsampler's.</summary>
    public int OutputCount => _resnets.Length + (_downsampler != null ? 1 : 0);

    /// <summary>
    /// hiddenStates [B, H, W, Cin] (not consumed), temb [B, Temb], encoderHiddenStates [B, Tctx, Cctx] -> the block's
    /// <see cref="OutputCount"/> output states written to <paramref name="outputs"/>, in order: each resnet (+ attention)
    /// output [B, H, W, Cout], then the downsampler output [B, H/2, W/2, Cout]. The last one is the block output; the
    /// caller owns and disposes all of them. <paramref name="hook"/> sees every resnet and transformer (<see cref="IBlockHook"/>).
    /// </summary>
    public void Forward(Tensor hiddenStates, Tensor temb, Tensor encoderHiddenStates, Span<Tensor> outputs, IBlockHook? hook = null)
    {
        if (outputs.Length != OutputCount)
            throw new ArgumentException($"This down block writes {OutputCount} states, not {outputs.Length}.", nameof(outputs));
        int written = 0;
        try
        {
            var hidden = hiddenStates;
            for (int j = 0; j < _resnets.Length; j++)
            {
                hidden = _resnets[j].Forward(hidden, temb, hook); // [B, H, W, Cout]
                outputs[written++] = hidden;
                AfterResnet(j, hidden, encoderHiddenStates, hook); // [B, H, W, Cout]
            }
            if (_downsampler != null) outputs[written++] = _downsampler.Forward(hidden); // [B, H/2, W/2, Cout]
        }
        catch
        {
            for (int i = 0; i < written; i++) outputs[i].Dispose();
            outputs.Clear();
            throw;
        }
    }

    /// <summary>The hooked blocks (<see cref="IBlockHook"/>) in execution order: each resnet, then what follows it.</summary>
    public IReadOnlyList<Module> Blocks => HookedBlock.InOrder(_resnets, ModuleAfterResnet);

    /// <summary>The module <see cref="AfterResnet"/> runs after resnet <paramref name="j"/> (none in a plain DownBlock2D).</summary>
    protected virtual Module? ModuleAfterResnet(int j) => null;

    /// <summary>Runs whatever follows resnet <paramref name="j"/>, in place on its output (nothing in a plain DownBlock2D).</summary>
    protected virtual void AfterResnet(int j, Tensor hiddenStates, Tensor encoderHiddenStates, IBlockHook? hook)
    {
    }

    protected virtual long AfterResnetMultiplyAccumulates(int j, int height, int width, int contextTokens) => 0;

    public long MultiplyAccumulates(int height, int width, int contextTokens)
    {
        long macs = 0;
        for (int j = 0; j < _resnets.Length; j++)
            macs += _resnets[j].MultiplyAccumulates(height, width) + AfterResnetMultiplyAccumulates(j, height, width, contextTokens);
        return macs + (_downsampler?.MultiplyAccumulates(height, width) ?? 0);
    }

    /// <summary>Spatial size of the block output for an input of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public (int Height, int Width) OutputSize(int height, int width) => _downsampler?.OutputSize(height, width) ?? (height, width);
}
