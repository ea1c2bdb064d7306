using DiffusionSharp.IO;
using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Nn;

/// <summary>
/// Weights from one or several safetensors files (a diffusers component, a sharded one, or one component of a
/// single-file checkpoint). Each stored tensor name becomes a model key in two optional steps: a <c>prefix</c>
/// is stripped (names without it are not part of this source, e.g. <c>"model.diffusion_model."</c> selects the UNet of
/// a single-file checkpoint), then <c>keyMap</c> renames the rest (e.g. the LDM -> diffusers mapping; returning null
/// leaves a tensor out). Two tensors mapping to the same model key are an error. F16, BF16 and the other stored
/// dtypes are converted to fp32 on read.
/// </summary>
public sealed class SafetensorsWeightSource : IWeightSource, IDisposable
{
    private readonly Dictionary<string, (SafetensorsFile File, SafetensorInfo Info)> _entries = new(StringComparer.Ordinal);
    private readonly SafetensorsFile[] _files;
    private readonly bool _ownsFiles;
    private readonly string? _prefix;

    /// <summary>A source over files the caller keeps open (and disposes).</summary>
    public SafetensorsWeightSource(IEnumerable<SafetensorsFile> files, string? prefix = null, Func<string, string?>? keyMap = null)
        : this(files.ToArray(), ownsFiles: false, prefix, keyMap)
    {
    }

    private SafetensorsWeightSource(SafetensorsFile[] files, bool ownsFiles, string? prefix, Func<string, string?>? keyMap)
    {
        if (files.Length == 0) throw new ArgumentException("A weight source needs at least one file.", nameof(files));
        _files = files;
        _ownsFiles = ownsFiles;
        _prefix = string.IsNullOrEmpty(prefix) ? null : prefix;
        foreach (var file in files)
        foreach (var info in file.Tensors)
        {
            if (_prefix != null && !info.Name.StartsWith(_prefix, StringComparison.Ordinal)) continue;
            string? key = _prefix != null ? info.Name[_prefix.Length..] : info.Name;
            if (keyMap != null) key = keyMap(key);
            if (key is null) continue;
            if (!_entries.TryAdd(key, (file, info)))
            {
                var first = _entries[key];
                throw new FileFormatException($"Tensors '{first.Info.Name}' ({first.File.Path}) and '{info.Name}' ({file.Path}) both provide weight '{key}'.")
                {
                    FilePath = file.Path,
                };
            }
        }
    }

    /// <summary>Opens <paramref name="paths"/> and owns them: disposing the source closes the files.</summary>
    public static SafetensorsWeightSource Open(IEnumerable<string> paths, string? prefix = null, Func<string, string?>? keyMap = null)
    {
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (var path in paths) files.Add(SafetensorsFile.Open(path));
            return new SafetensorsWeightSource(files.ToArray(), ownsFiles: true, prefix, keyMap);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Opens one file and owns it.</summary>
    public static SafetensorsWeightSource Open(string path, string? prefix = null, Func<string, string?>? keyMap = null)
        => Open([path], prefix, keyMap);

    public IEnumerable<string> Keys => _entries.Keys;

    public bool Contains(string key) => _entries.ContainsKey(key);

    public long[] GetShape(string key) => (long[])Entry(key).Info.Shape.Clone();

    public void Read(string key, Span<float> destination)
    {
        var (file, info) = Entry(key);
        file.ReadFloat32(info, destination);
    }

    public string Describe(string key)
    {
        if (_entries.TryGetValue(key, out var entry)) return $"{entry.File.Path}, stored as '{entry.Info.Name}'";
        string files = string.Join(", ", _files.Select(f => f.Path));
        return _prefix != null ? $"not in {files} under prefix '{_prefix}'" : $"not in {files}";
    }

    private (SafetensorsFile File, SafetensorInfo Info) Entry(string key)
        => _entries.TryGetValue(key, out var entry) ? entry : throw new MissingWeightException(key, Describe(key));

    public void Dispose()
    {
        if (!_ownsFiles) return;
        foreach (var f in _files) f.Dispose();
    }
}
