namespace DiffusionSharp.Nn;

/// <summary>Zero padding of a 2-D convolution's input, per side (the VAE encoder's downsampler pads right and bottom only).</summary>
public readonly record struct Padding2d(int Top, int Left, int Bottom, int Right)
{
    public static Padding2d Same(int padding) => new(padding, padding, padding, padding);
}
