namespace DiffusionSharp.Pipeline;

/// <summary>
/// The latent a sampler ended on, as the VAE received it before its <c>1 / scaling_factor</c>: channels-last
/// <c>[1, Height, Width, Channels]</c> (the engine's layout; PyTorch tools hold it as <c>[1, Channels, Height, Width]</c>).
/// Height and Width are the image's divided by the VAE's factor (8 for SD).
/// </summary>
public sealed record GeneratedLatent(int Height, int Width, int Channels, float[] Values)
{
    /// <summary>Element (c, y, x), so callers need not know the layout.</summary>
    public float this[int channel, int y, int x] => Values[(y * Width + x) * Channels + channel];
}
