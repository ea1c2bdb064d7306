using System.Globalization;
using System.Text.Json;

namespace DiffusionSharp.Models.Configs;

/// <summary>
/// Typed, validating access to the keys of a diffusers / transformers <c>config.json</c>. Absent keys and JSON
/// <c>null</c> take the given default; a value of the wrong JSON type is a <see cref="ConfigException"/> naming the
/// file and the key. Keys the engine does not know are ignored (diffusers writes many bookkeeping keys).
/// </summary>
internal sealed class ConfigJsonReader
{
    private readonly JsonElement _root;

    public string Source { get; }

    private ConfigJsonReader(JsonElement root, string source)
    {
        _root = root;
        Source = source;
    }

    public static ConfigJsonReader Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 16 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ConfigException(source, null, $"not valid JSON ({e.Message})");
        }
        if (root.ValueKind != JsonValueKind.Object) throw new ConfigException(source, null, "expected a JSON object");
        return new ConfigJsonReader(root, source);
    }

    /// <summary>A reader over the nested object <paramref name="key"/> when present (e.g. a full CLIPConfig's <c>text_config</c>).</summary>
    public ConfigJsonReader? Nested(string key)
    {
        if (!TryGet(key, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Object) throw Error(key, $"expected an object, got {Describe(value)}");
        return new ConfigJsonReader(value, Source);
    }

    public ConfigException Error(string key, string message) => new(Source, key, message);

    /// <summary>True when <paramref name="key"/> is present and not null.</summary>
    public bool Has(string key) => TryGet(key, out _);

    /// <summary>True when <paramref name="key"/> holds a single number (not a list).</summary>
    public bool IsNumber(string key) => TryGet(key, out var v) && v.ValueKind == JsonValueKind.Number;

    public int Int(string key, int fallback) => TryGet(key, out var v) ? ToInt(key, v) : fallback;

    public int? NullableInt(string key, int? fallback) => TryGet(key, out var v) ? ToInt(key, v) : fallback;

    public double Double(string key, double fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw Error(key, $"expected a finite number, got {Describe(v)}");
        return d;
    }

    public bool Bool(string key, bool fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, $"expected true or false, got {Describe(v)}"),
        };
    }

    public string? String(string key, string? fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.String) throw Error(key, $"expected a string, got {Describe(v)}");
        return v.GetString();
    }

    public ValueList<string> StringList(string key, ValueList<string> fallback)
        => TryGet(key, out var v) ? ValueList.Create<string>(List(key, v, e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Error(key, $"expected strings, got {Describe(e)}"))) : fallback;

    public ValueList<int> IntList(string key, ValueList<int> fallback)
        => TryGet(key, out var v) ? ValueList.Create<int>(List(key, v, e => ToInt(key, e))) : fallback;

    /// <summary>An int broadcast to every level, or a list with one entry per level (diffusers allows both).</summary>
    public ValueList<int> IntPerLevel(string key, int levels, ValueList<int> fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind == JsonValueKind.Number) return ValueList.Repeat(ToInt(key, v), levels);
        return CheckLevels(key, List(key, v, e => ToInt(key, e)), levels);
    }

    /// <summary>A bool broadcast to every level, or a list with one entry per level.</summary>
    public ValueList<bool> BoolPerLevel(string key, int levels, ValueList<bool> fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return ValueList.Repeat(v.GetBoolean(), levels);
        return CheckLevels(key, List(key, v, e => e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw Error(key, $"expected booleans, got {Describe(e)}")), levels);
    }

    /// <summary>Rejects a key whose value would change the architecture in a way the engine does not implement:
    /// absent, null, or equal to <paramref name="supported"/> passes.</summary>
    public void RequireSupported(string key, object? supported)
    {
        if (!TryGet(key, out var v)) return;
        bool ok = supported switch
        {
            null => false,
            bool b => v.ValueKind == (b ? JsonValueKind.True : JsonValueKind.False)
                      || (v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == (b ? JsonValueKind.True : JsonValueKind.False))),
            string s => v.ValueKind == JsonValueKind.String && v.GetString() == s,
            int i => v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == i,
            double x => v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == x,
            _ => throw new ArgumentException($"Unsupported comparison value {supported}.", nameof(supported)),
        };
        if (!ok)
            throw Error(key, $"{Describe(v)} is not supported (only {(supported is null ? "null" : JsonSerializer.Serialize(supported))})");
    }

    private bool TryGet(string key, out JsonElement value)
        => _root.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    private int ToInt(string key, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt32(out int i)) return i;
            if (v.TryGetDouble(out double d) && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        }
        throw Error(key, $"expected an integer, got {Describe(v)}");
    }

    private T[] List<T>(string key, JsonElement v, Func<JsonElement, T> item)
    {
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, $"expected a list, got {Describe(v)}");
        return v.EnumerateArray().Select(item).ToArray();
    }

    private ValueList<T> CheckLevels<T>(string key, T[] items, int levels)
    {
        if (items.Length != levels)
            throw Error(key, $"has {items.Length} entries but block_out_channels has {levels} levels");
        return ValueList.Create<T>(items);
    }

    private static string Describe(JsonElement v)
    {
        string text = v.GetRawText();
        if (text.Length > 40) text = text[..37] + "...";
        return string.Create(CultureInfo.InvariantCulture, $"{v.ValueKind.ToString().ToLowerInvariant()} {text}");
    }
}
