namespace DiffusionSharp.IO.Png;

/// <summary>
/// An 8-bit RGB image, the engine's output: <see cref="Pixels"/> holds <c>Width * Height * 3</c> bytes,
/// row-major, R G B interleaved, top row first.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="pixels"/> (not copied); its length must be exactly <c>width * height * 3</c>.</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        long needed = ByteLength(width, height);
        if (pixels.Length != needed)
            throw new ArgumentException($"A {width}x{height} RGB image needs {needed} bytes, got {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>A black image.</summary>
    public RgbImage(int width, int height) : this(width, height, new byte[ByteLength(width, height)]) { }

    public int Width { get; }

    public int Height { get; }

    public byte[] Pixels { get; }

    private static long ByteLength(int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(width <= 0 ? nameof(width) : nameof(height), $"Image sizes must be positive, got {width}x{height}.");
        long bytes = 3L * width * height;
        if (bytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(width), $"A {width}x{height} RGB image does not fit in one array.");
        return bytes;
    }

    public override string ToString() => $"RgbImage {Width}x{Height}";
}
