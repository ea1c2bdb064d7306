using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>
/// diffusers VAE <c>Encoder</c>: conv_in -> down_blocks -> mid_block -> conv_norm_out -> SiLU -> conv_out, producing
/// 2 * latent_channels moments (mean, then log-variance). GroupNorm eps 1e-6.
/// </summary>
public sealed class Encoder : Module
{
    private const float Eps = 1e-6f;

    private readonly Conv2d _convIn;
    private readonly DownEncoderBlock2D[] _downBlocks;
    private readonly UNetMidBlock2D _midBlock;
    private readonly GroupNorm _convNormOut;
    private readonly Conv2d _convOut;

    private Encoder(WeightScope scope, VaeConfig config)
    {
        var channels = config.BlockOutChannels;
        int groups = config.NormNumGroups;
        try
        {
            _convIn = Add(Conv2d.Load(scope.Push("conv_in"), config.InChannels, channels[0], kernelSize: 3, padding: 1));
            var down = scope.Push("down_blocks");
            _downBlocks = new DownEncoderBlock2D[config.Levels];
            for (int i = 0; i < _downBlocks.Length; i++)
                _downBlocks[i] = Add(DownEncoderBlock2D.Load(down.Push(i), channels[Math.Max(i - 1, 0)], channels[i], config.LayersPerBlock, groups,
                    addDownsample: i < config.Levels - 1));
            _midBlock = Add(UNetMidBlock2D.Load(scope.Push("mid_block"), channels[^1], groups, config.MidBlockAddAttention));
            _convNormOut = Add(GroupNorm.Load(scope.Push("conv_norm_out"), groups, channels[^1], Eps));
            _convOut = Add(Conv2d.Load(scope.Push("conv_out"), channels[^1], 2 * config.LatentChannels, kernelSize: 3, padding: 1));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static Encoder Load(WeightScope scope, VaeConfig config) => new(scope, config);

    /// <summary>x [B, H, W, in_channels] -> moments [B, H/f, W/f, 2 * latent_channels], a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        var hidden = _convIn.Forward(x); // [B, H, W, C0]
        try
        {
            foreach (var block in _downBlocks)
            {
                var next = block.Forward(hidden); // [B, H/2^i, W/2^i, Ci]
                hidden.Dispose();
                hidden = next;
            }
            var mid = _midBlock.Forward(hidden); // [B, h, w, Clast]
            hidden.Dispose();
            hidden = mid;
            _convNormOut.Forward(hidden, hidden, silu: true); // [B, h, w, Clast]
            return _convOut.Forward(hidden); // [B, h, w, 2*latent]
        }
        finally
        {
            hidden.Dispose();
        }
    }

    public long MultiplyAccumulates(int height, int width)
    {
        long macs = _convIn.MultiplyAccumulates(height, width);
        foreach (var block in _downBlocks)
        {
            macs += block.MultiplyAccumulates(height, width);
            (height, width) = block.OutputSize(height, width);
        }
        return macs + _midBlock.MultiplyAccumulates(height, width) + _convOut.MultiplyAccumulates(height, width);
    }
}
