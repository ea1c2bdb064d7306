namespace DiffusionSharp.IO.Png;

/// <summary>A PNG file this reader cannot decode: corrupt, truncated, or of a kind it does not support. The message names the file.</summary>
public sealed class PngFormatException : FileFormatException
{
    public PngFormatException(string message) : base(message) { }

    public PngFormatException(string message, Exception? innerException) : base(message, innerException) { }

    internal static PngFormatException For(string source, string problem, Exception? inner = null) =>
        new($"{source}: {problem}", inner) { FilePath = source };
}
