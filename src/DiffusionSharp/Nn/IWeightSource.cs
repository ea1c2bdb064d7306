namespace DiffusionSharp.Nn;

/// <summary>
/// Where a model's weights come from, by checkpoint key (diffusers / HF transformers naming, e.g.
/// <c>down_blocks.0.resnets.0.conv1.weight</c>). Values are delivered as fp32 whatever the stored dtype.
/// Layers never call this directly: they bind through a <see cref="WeightScope"/>, which checks shapes.
/// </summary>
public interface IWeightSource
{
    /// <summary>Every key this source can deliver.</summary>
    IEnumerable<string> Keys { get; }

    bool Contains(string key);

    /// <summary>The stored shape of <paramref name="key"/>; throws <see cref="MissingWeightException"/> when absent.</summary>
    long[] GetShape(string key);

    /// <summary>Copies the values of <paramref name="key"/>, converted to fp32, into <paramref name="destination"/>
    /// (exactly as many elements as the tensor holds).</summary>
    void Read(string key, Span<float> destination);

    /// <summary>Where <paramref name="key"/> is (or would be) found, for error messages: file and stored key.</summary>
    string Describe(string key);
}
