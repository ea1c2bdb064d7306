using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>
/// diffusers VAE <c>Decoder</c>: conv_in -> mid_block -> up_blocks (widths reversed, layers_per_block + 1 resnets each,
/// x2 upsampling but at the last) -> conv_norm_out -> SiLU -> conv_out. GroupNorm eps 1e-6.
/// </summary>
public sealed class Decoder : Module
{
    private const float Eps = 1e-6f;

    private readonly Conv2d _convIn;
    private readonly UNetMidBlock2D _midBlock;
    private readonly UpDecoderBlock2D[] _upBlocks;
    private readonly GroupNorm _convNormOut;
    private readonly Conv2d _convOut;

    private Decoder(WeightScope scope, VaeConfig config)
    {
        var channels = config.BlockOutChannels;
        int groups = config.NormNumGroups, levels = config.Levels;
        try
        {
            _convIn = Add(Conv2d.Load(scope.Push("conv_in"), config.LatentChannels, channels[^1], kernelSize: 3, padding: 1));
            _midBlock = Add(UNetMidBlock2D.Load(scope.Push("mid_block"), channels[^1], groups, config.MidBlockAddAttention));
            var up = scope.Push("up_blocks");
            _upBlocks = new UpDecoderBlock2D[levels];
            for (int i = 0; i < levels; i++)
                _upBlocks[i] = Add(UpDecoderBlock2D.Load(up.Push(i), channels[levels - 1 - Math.Max(i - 1, 0)], channels[levels - 1 - i],
                    config.LayersPerBlock + 1, groups, addUpsample: i < levels - 1));
            _convNormOut = Add(GroupNorm.Load(scope.Push("conv_norm_out"), groups, channels[0], Eps));
            _convOut = Add(Conv2d.Load(scope.Push("conv_out"), channels[0], config.OutChannels, kernelSize: 3, padding: 1));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static Decoder Load(WeightScope scope, VaeConfig config) => new(scope, config);

    /// <summary>z [B, h, w, latent_channels] -> [B, h*f, w*f, out_channels], a new tensor.</summary>
    public Tensor Forward(Tensor z)
    {
        var hidden = _convIn.Forward(z); // [B, h, w, Clast]
        try
        {
            var mid = _midBlock.Forward(hidden); // [B, h, w, Clast]
            hidden.Dispose();
            hidden = mid;
            foreach (var block in _upBlocks)
            {
                var next = block.Forward(hidden); // [B, h*2^i, w*2^i, Ci]
                hidden.Dispose();
                hidden = next;
            }
            _convNormOut.Forward(hidden, hidden, silu: true); // [B, H, W, C0]
            return _convOut.Forward(hidden); // [B, H, W, out_channels]
        }
        finally
        {
            hidden.Dispose();
        }
    }

    public long MultiplyAccumulates(int height, int width)
    {
        long macs = _convIn.MultiplyAccumulates(height, width) + _midBlock.MultiplyAccumulates(height, width);
        for (int i = 0; i < _upBlocks.Length; i++)
        {
            macs += _upBlocks[i].MultiplyAccumulates(height, width);
            if (i < _upBlocks.Length - 1) (height, width) = (2 * height, 2 * width);
        }
        return macs + _convOut.MultiplyAccumulates(height, width);
    }
}
