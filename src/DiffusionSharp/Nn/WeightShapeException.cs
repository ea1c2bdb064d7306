namespace DiffusionSharp.Nn;

/// <summary>A checkpoint tensor has another shape than the model configuration implies.</summary>
public sealed class WeightShapeException(string key, string location, long[] expected, long[] found)
    : WeightException(key, $"Weight '{key}' ({location}) has shape {Format(found)}, but the model configuration needs {Format(expected)}.")
{
    public long[] Expected { get; } = expected;
    public long[] Found { get; } = found;

    internal static string Format(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
