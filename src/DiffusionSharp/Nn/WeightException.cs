using DiffusionSharp.IO;

namespace DiffusionSharp.Nn;

/// <summary>A checkpoint does not fit the model being loaded: a tensor is missing or has the wrong shape.
/// The message names the full checkpoint key and the file. A <see cref="FileFormatException"/>, so front ends report
/// it as a bad input file.</summary>
public abstract class WeightException : FileFormatException
{
    public string Key { get; }

    protected WeightException(string key, string message) : base(message)
    {
        Key = key;
    }
}
