namespace DiffusionSharp.IO;

/// <summary>
/// A file the engine cannot read because its content is not what its format requires (a corrupt or truncated
/// safetensors or PNG file, a pickle checkpoint given as safetensors). The message names the file.
/// The format readers throw the subclasses <see cref="Safetensors.SafetensorsFormatException"/> and
/// <see cref="Png.PngFormatException"/>; front ends catch this type to report a bad input file.
/// (<see cref="InvalidDataException"/> would be the natural base, but it is sealed.)
/// </summary>
public class FileFormatException : IOException
{
    public FileFormatException(string message) : base(message) { }

    public FileFormatException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>The file the error is about, as the caller named it.</summary>
    public string? FilePath { get; init; }
}
