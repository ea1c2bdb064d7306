namespace DiffusionSharp.IO.Png;

/// <summary>
/// A decoded PNG: 8 bits per sample, <see cref="Channels"/> interleaved samples per pixel, row-major, top row
/// first. Channels: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. Palette images are expanded to RGB, or to RGBA when
/// they carry a tRNS chunk.
/// </summary>
public sealed class PngImage
{
    internal PngImage(int width, int height, int channels, byte[] pixels, IReadOnlyDictionary<string, string> text)
    {
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
        Text = text;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>Samples per pixel: 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA).</summary>
    public int Channels { get; }

    /// <summary>Bits per sample; always 8 (other depths are rejected on read).</summary>
    public int BitDepth => 8;

    /// <summary><c>Width * Height * Channels</c> bytes.</summary>
    public byte[] Pixels { get; }

    /// <summary>Text chunks (tEXt, zTXt, iTXt) by keyword; a keyword that appears twice keeps its last value.</summary>
    public IReadOnlyDictionary<string, string> Text { get; }

    public override string ToString() => $"PngImage {Width}x{Height}x{Channels}";
}
