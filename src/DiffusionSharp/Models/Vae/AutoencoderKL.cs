using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Vae;

/// <summary>
/// diffusers <c>AutoencoderKL</c>, the Stable Diffusion VAE. Channels-last: images [B, H, W, 3] in [-1, 1], latents
/// [B, H/f, W/f, latent_channels] with f = 2^(levels-1). Keys <c>encoder.*</c>, <c>quant_conv</c>, <c>post_quant_conv</c>,
/// <c>decoder.*</c>. Scaling by scaling_factor is the caller's job.
/// </summary>
public sealed class AutoencoderKL : Module
{
    private const float LogVarMin = -30f, LogVarMax = 20f;

    private readonly Encoder? _encoder;
    private readonly Linear? _quantConv;
    private readonly Linear? _postQuantConv;
    private readonly Decoder _decoder;

    public VaeConfig Config { get; }
    public bool HasEncoder => _encoder != null;

    private AutoencoderKL(WeightScope scope, VaeConfig config, bool loadEncoder)
    {
        Config = config;
        int latent = config.LatentChannels;
        try
        {
            if (loadEncoder)
            {
                _encoder = Add(Encoder.Load(scope.Push("encoder"), config));
                if (config.UseQuantConv) _quantConv = Add(Linear.LoadPointwiseConv(scope.Push("quant_conv"), 2 * latent, 2 * latent));
            }
            if (config.UsePostQuantConv) _postQuantConv = Add(Linear.LoadPointwiseConv(scope.Push("post_quant_conv"), latent, latent));
            _decoder = Add(Decoder.Load(scope.Push("decoder"), config));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Binds the VAE's weights. Text-to-image needs only the decoder: with <paramref name="loadEncoder"/> false
    /// the encoder is not read (nor kept in memory) and <see cref="Encode"/> is unavailable.</summary>
    public static AutoencoderKL Load(WeightScope scope, VaeConfig config, bool loadEncoder = true)
        => new(scope, config.Validate(), loadEncoder);

    /// <summary>z [B, h, w, latent_channels] (already divided by scaling_factor) -> image [B, h*f, w*f, out_channels],
    /// nominally in [-1, 1] (not clamped); a new tensor.</summary>
    public Tensor Decode(Tensor z)
    {
        if (z.Rank != 4 || z.Shape[3] != Config.LatentChannels)
            throw new ArgumentException($"VAE latents {z} must be [B, h, w, {Config.LatentChannels}] (channels-last).", nameof(z));
        if (_postQuantConv == null) return _decoder.Forward(z); // [B, H, W, 3]
        using var quantized = _postQuantConv.Forward(z); // [B, h, w, latent]
        return _decoder.Forward(quantized); // [B, H, W, 3]
    }

    /// <summary>image [B, H, W, in_channels] in [-1, 1] -> the posterior's mean and log-variance, each
    /// [B, H/f, W/f, latent_channels], log-variance clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution.
    /// A sample is mean + exp(logvar / 2) * noise. Both tensors are new.</summary>
    public (Tensor Mean, Tensor LogVar) Encode(Tensor image)
    {
        if (_encoder == null) throw new InvalidOperationException("This AutoencoderKL was loaded without its encoder.");
        if (image.Rank != 4 || image.Shape[3] != Config.InChannels)
            throw new ArgumentException($"VAE input {image} must be [B, H, W, {Config.InChannels}] (channels-last).", nameof(image));
        using var encoded = _encoder.Forward(image); // [B, h, w, 2*latent]
        using var moments = _quantConv?.Forward(encoded); // [B, h, w, 2*latent]
        var source = (moments ?? encoded).Span;
        int b = encoded.Shape[0], h = encoded.Shape[1], w = encoded.Shape[2], latent = Config.LatentChannels;
        var mean = new Tensor(b, h, w, latent); // [B, h, w, latent]
        var logVar = new Tensor(b, h, w, latent); // [B, h, w, latent]
        var meanValues = mean.Span;
        var logVarValues = logVar.Span;
        for (long p = 0; p < (long)b * h * w; p++)
        {
            var pixel = source.Slice((int)(p * 2 * latent), 2 * latent);
            pixel[..latent].CopyTo(meanValues.Slice((int)(p * latent), latent));
            for (int c = 0; c < latent; c++) logVarValues[(int)(p * latent) + c] = Math.Clamp(pixel[latent + c], LogVarMin, LogVarMax);
        }
        return (mean, logVar);
    }

    /// <summary>Floating-point operations (2 x multiply-accumulates of convolutions, linear layers and attention) of one
    /// decode of one latent of <paramref name="latentHeight"/> x <paramref name="latentWidth"/>.</summary>
    public long DecodeFlops(int latentHeight, int latentWidth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latentHeight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(latentWidth, 1);
        long pixels = (long)latentHeight * latentWidth;
        return 2 * ((_postQuantConv?.MultiplyAccumulates(pixels) ?? 0) + _decoder.MultiplyAccumulates(latentHeight, latentWidth));
    }
}
