using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DiffusionSharp.Models.Configs;

/// <summary>Writes a config.json the way diffusers does: one indented object, keys in the given order.</summary>
internal sealed class ConfigJsonWriter : IDisposable
{
    private readonly MemoryStream _stream = new();
    private readonly Utf8JsonWriter _writer;

    public ConfigJsonWriter(string className, string versionKey, string version)
    {
        _writer = new Utf8JsonWriter(_stream, new JsonWriterOptions { Indented = true });
        _writer.WriteStartObject();
        if (className.Length > 0) _writer.WriteString("_class_name", className);
        _writer.WriteString(versionKey, version);
    }

    public ConfigJsonWriter Write(string key, int value) { _writer.WriteNumber(key, value); return this; }

    /// <summary>Writes the shortest decimal that round-trips the float (1e-05, not 9.99999974737875E-06).</summary>
    public ConfigJsonWriter Write(string key, float value)
    {
        _writer.WriteNumber(key, double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
        return this;
    }

    public ConfigJsonWriter Write(string key, bool value) { _writer.WriteBoolean(key, value); return this; }

    public ConfigJsonWriter Write(string key, string? value)
    {
        if (value is null) _writer.WriteNull(key);
        else _writer.WriteString(key, value);
        return this;
    }

    public ConfigJsonWriter Write(string key, int? value)
    {
        if (value is { } v) _writer.WriteNumber(key, v);
        else _writer.WriteNull(key);
        return this;
    }

    public ConfigJsonWriter Write<T>(string key, IEnumerable<T> values)
    {
        _writer.WriteStartArray(key);
        foreach (var v in values)
        {
            switch (v)
            {
                case int i: _writer.WriteNumberValue(i); break;
                case bool b: _writer.WriteBooleanValue(b); break;
                case string s: _writer.WriteStringValue(s); break;
                default: throw new ArgumentException($"Cannot write {typeof(T)} values.", nameof(values));
            }
        }
        _writer.WriteEndArray();
        return this;
    }

    public string Finish()
    {
        _writer.WriteEndObject();
        _writer.Flush();
        return Encoding.UTF8.GetString(_stream.ToArray()) + "\n";
    }

    public void Dispose()
    {
        _writer.Dispose();
        _stream.Dispose();
    }
}
