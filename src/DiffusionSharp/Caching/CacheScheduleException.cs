using DiffusionSharp.IO;

namespace DiffusionSharp.Caching;

/// <summary>
/// A cache schedule file that cannot be used: malformed, or made for another model, sampler, spacing or step count.
/// The message names the file and what is wrong.
/// </summary>
public sealed class CacheScheduleException : FileFormatException
{
    public CacheScheduleException(string path, string message) : base($"Cache schedule '{path}': {message}")
    {
        FilePath = path;
    }

    public CacheScheduleException(string path, string message, Exception innerException) : base($"Cache schedule '{path}': {message}", innerException)
    {
        FilePath = path;
    }
}
