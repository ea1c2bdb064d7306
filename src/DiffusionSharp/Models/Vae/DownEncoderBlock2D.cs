using DiffusionSharp.Models.Unet;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>diffusers <c>DownEncoderBlock2D</c>: <c>resnets.{j}</c> (eps 1e-6, no time embedding), then an optional
/// <c>downsamplers.0</c> that pads right and bottom and convolves 3x3 with stride 2.</summary>
public sealed class DownEncoderBlock2D : Module
{
    private const float Eps = 1e-6f;

    private readonly ResnetBlock2D[] _resnets;
    private readonly Downsample2D? _downsampler;

    private DownEncoderBlock2D(WeightScope scope, int inChannels, int outChannels, int layers, int groups, bool addDownsample)
    {
        try
        {
            var resnets = scope.Push("resnets");
            _resnets = new ResnetBlock2D[layers];
            for (int j = 0; j < layers; j++)
                _resnets[j] = Add(ResnetBlock2D.Load(resnets.Push(j), j == 0 ? inChannels : outChannels, outChannels, null, groups, Eps));
            if (addDownsample) _downsampler = Add(Downsample2D.Load(scope.Push("downsamplers").Push(0), outChannels, padding: 0));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static DownEncoderBlock2D Load(WeightScope scope, int inChannels, int outChannels, int layers, int groups, bool addDownsample)
        => new(scope, inChannels, outChannels, layers, groups, addDownsample);

    /// <summary>x [B, H, W, Cin] -> [B, H, W, Cout], or [B, H/2, W/2, Cout] with the downsampler; a new tensor.</summary>
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
            if (_downsampler == null) return hidden!;
            using (hidden) return _downsampler.Forward(hidden!); // [B, H/2, W/2, Cout]
        }
        catch
        {
            hidden?.Dispose();
            throw;
        }
    }

    public long MultiplyAccumulates(int height, int width)
        => _resnets.Sum(r => r.MultiplyAccumulates(height, width)) + (_downsampler?.MultiplyAccumulates(height, width) ?? 0);

    public (int Height, int Width) OutputSize(int height, int width) => _downsampler?.OutputSize(height, width) ?? (height, width);
}
