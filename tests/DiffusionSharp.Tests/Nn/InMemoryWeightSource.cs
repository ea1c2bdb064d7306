using DiffusionSharp.Nn;

namespace DiffusionSharp.Tests;

/// <summary>Weights held in a dictionary, for tests that build a layer from hand-written numbers.</summary>
internal sealed class InMemoryWeightSource : IWeightSource
{
    private readonly Dictionary<string, (float[] Values, long[] Shape)> _tensors = new(StringComparer.Ordinal);

    public void Add(string key, float[] values, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        if (values.Length != count) throw new ArgumentException($"{key}: {values.Length} values for shape [{string.Join(", ", shape)}].");
        _tensors[key] = (values, shape);
    }

    public IEnumerable<string> Keys => _tensors.Keys;

    public bool Contains(string key) => _tensors.ContainsKey(key);

    public long[] GetShape(string key) => (long[])_tensors[key].Shape.Clone();

    public void Read(string key, Span<float> destination) => _tensors[key].Values.CopyTo(destination);

    public string Describe(string key) => $"in-memory test weights, key '{key}'";
}
