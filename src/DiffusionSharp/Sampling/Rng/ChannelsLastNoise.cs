namespace DiffusionSharp.Sampling.Rng;

/// <summary>
/// Adapts a generator that draws in PyTorch's channels-first order (<c>[C, H, W]</c>, the order every reproduced tool
/// fills a latent in) to a channels-last latent (<c>[H, W, C]</c>, the engine's layout): each call draws C*H*W values
/// from the inner generator and writes value <c>(c, h, w)</c> to position <c>(h, w, c)</c>. Wrap the generator in this
/// for both the initial noise and the sampler, so a seed gives the same image as in channels-first tools.
/// </summary>
public sealed class ChannelsLastNoise : INoiseGenerator
{
    private readonly INoiseGenerator _inner;
    private readonly float[] _channelsFirst;

    public ChannelsLastNoise(INoiseGenerator inner, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        long length = (long)channels * height * width;
        if (length > Array.MaxLength)
            throw new ArgumentException($"A {channels}x{height}x{width} latent is too large for one noise draw.");
        _inner = inner;
        Channels = channels;
        Height = height;
        Width = width;
        _channelsFirst = new float[length];
    }

    public int Channels { get; }

    public int Height { get; }

    public int Width { get; }

    public void NextNormal(Span<float> destination)
    {
        if (destination.Length != _channelsFirst.Length)
            throw new ArgumentException(
                $"This generator draws {Channels}x{Height}x{Width} = {_channelsFirst.Length} values; the destination holds {destination.Length}.",
                nameof(destination));
        _inner.NextNormal(_channelsFirst); // [C, H, W]
        int plane = Height * Width;
        for (int c = 0; c < Channels; c++)
            for (int p = 0; p < plane; p++)
                destination[p * Channels + c] = _channelsFirst[c * plane + p]; // [H, W, C]
    }
}
