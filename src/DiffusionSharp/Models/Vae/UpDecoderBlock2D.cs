using DiffusionSharp.Models.Unet;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>diffusers <c>UpDecoderBlock2D</c>: <c>resnets.{j}</c> (layers_per_block + 1 of them, eps 1e-6, no time
/// embedding), then an optional <c>upsamplers.0</c> (nearest x2, conv 3x3).</summary>
public sealed class UpDecoderBlock2D : Module
{
    private const float Eps = 1e-6f;

    private readonly ResnetBlock2D[] _resnets;
    private readonly Upsample2D? _upsampler;

    private UpDecoderBlock2D(WeightScope scope, int inChannels, int outChannels, int layers, int groups, bool addUpsample)
    {
        try
        {
            var resnets = scope.Push("resnets");
            _resnets = new ResnetBlock2D[layers];
            for (int j = 0; j < layers; j++)
                _resnets[j] = Add(ResnetBlock2D.Load(resnets.Push(j), j == 0 ? inChannels : outChannels, outChannels, null, groups, Eps));
            if (addUpsample) _upsampler = Add(Upsample2D.Load(scope.Push("upsamplers").Push(0), outChannels));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static UpDecoderBlock2D Load(WeightScope scope, int inChannels, int outChannels, int layers, int groups, bool addUpsample)
        => new(scope, inChannels, outChannels, layers, groups, addUpsample);

    /// <summary>x [B, H, W, Cin] -> [B, H, W, Cout], or [B, 2H, 2W, Cout] with the upsampler; a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        Tensor? hidden = null;
        try
        {
            foreach (var resnet in _resnets)
            {
                var next = resnet.Forward(hidden ?? x, null); // [B, H, W, Cout]
                hidden?.Dispose();
                hidden = next;
            }
            if (_upsampler == null) return hidden!;
            using (hidden) return _upsampler.Forward(hidden!); // [B, 2H, 2W, Cout]
        }
        catch
        {
            hidden?.Dispose();
            throw;
        }
    }

    public long MultiplyAccumulates(int height, int width)
        => _resnets.Sum(r => r.MultiplyAccumulates(height, width)) + (_upsampler?.MultiplyAccumulates(2 * height, 2 * width) ?? 0);
}
