using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Nn;

namespace DiffusionSharp.Models.Checkpoints;

/// <summary>
/// One component of an original-layout single-file checkpoint, seen under diffusers keys through
/// <see cref="LdmKeyMap"/>. The VAE attention projections stored as 1x1 convolutions [C, C, 1, 1] are presented with
/// their diffusers linear shape [C, C] (same values, same order). The file stays owned by the caller.
/// </summary>
public sealed class LdmWeightSource : IWeightSource
{
    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, (SafetensorInfo Info, bool Squeeze)> _entries = new(StringComparer.Ordinal);

    public LdmWeightSource(SafetensorsFile file, LdmMapping mapping, ModelComponent component)
    {
        _file = file;
        foreach (var (ldmKey, target) in mapping.Mapped)
            if (target.Component == component) _entries[target.DiffusersKey] = (file.GetInfo(ldmKey), target.SqueezeTrailingOnes);
    }

    public IEnumerable<string> Keys => _entries.Keys;

    public bool Contains(string key) => _entries.ContainsKey(key);

    public long[] GetShape(string key)
    {
        var (info, squeeze) = Entry(key);
        return squeeze && info.Shape is [var o, var i, 1, 1] ? [o, i] : (long[])info.Shape.Clone();
    }

    public void Read(string key, Span<float> destination) => _file.ReadFloat32(Entry(key).Info, destination);

    public string Describe(string key)
        => _entries.TryGetValue(key, out var e) ? $"{_file.Path}, stored as '{e.Info.Name}'" : $"not in {_file.Path}";

    private (SafetensorInfo Info, bool Squeeze) Entry(string key)
        => _entries.TryGetValue(key, out var e) ? e : throw new MissingWeightException(key, Describe(key));
}
