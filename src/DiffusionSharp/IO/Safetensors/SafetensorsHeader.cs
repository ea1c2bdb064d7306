using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// Parses and validates a safetensors header as the reference Rust parser does (<c>SafeTensors::read_metadata</c>
/// and <c>Metadata::validate</c>), and also rejects duplicate keys, which the reference only forbids in prose.
/// Every failure is a <see cref="SafetensorsFormatException"/> naming the file and, where there is one, the tensor.
/// </summary>
internal static class SafetensorsHeader
{
    public const string MetadataKey = "__metadata__";

    private readonly record struct RawEntry(string Name, SafetensorsDType DType, ulong[] Shape, ulong Begin, ulong End);

    /// <summary>
    /// Parses <paramref name="header"/> (the N bytes after the length prefix) and checks the entries against a data
    /// buffer of <paramref name="dataLength"/> bytes. Returns the tensors sorted by data offset.
    /// </summary>
    public static (Dictionary<string, string> Metadata, SafetensorInfo[] Tensors) Parse(
        ReadOnlySpan<byte> header, long dataLength, string path)
    {
        if (!Utf8.IsValid(header))
            throw SafetensorsFormatException.For(path, $"the {header.Length}-byte header is not valid UTF-8.");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<RawEntry>();
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            ParseRoot(ref reader, metadata, entries, path);
        }
        catch (JsonException e)
        {
            throw SafetensorsFormatException.For(path, $"the header is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            // Utf8JsonReader.GetString on an escape such as "\ud800" that decodes to invalid UTF-16.
            throw SafetensorsFormatException.For(path, $"the header holds an invalid JSON string: {e.Message}", e);
        }
        return (metadata, Validate(entries, dataLength, path));
    }

    private static void ParseRoot(ref Utf8JsonReader reader, Dictionary<string, string> metadata, List<RawEntry> entries, string path)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw SafetensorsFormatException.For(path, $"the header must be a JSON object, found {Describe(ref reader)}.");
        var keys = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string name = reader.GetString()!;
            if (!keys.Add(name))
                throw SafetensorsFormatException.For(path, $"the header has the key '{name}' twice; keys must be unique.");
            reader.Read();
            if (name == MetadataKey)
                ParseMetadata(ref reader, metadata, path);
            else
                entries.Add(ParseEntry(ref reader, name, path));
        }
        // Anything but whitespace after the closing brace makes Utf8JsonReader throw.
        while (reader.Read()) { }
    }

    private static void ParseMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string path)
    {
        if (reader.TokenType == JsonTokenType.Null) return;
        if (reader.TokenType != JsonTokenType.StartObject)
            throw SafetensorsFormatException.For(path, $"{MetadataKey} must be an object of string values, found {Describe(ref reader)}.");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                throw SafetensorsFormatException.For(path, $"{MetadataKey} value of '{key}' is {Describe(ref reader)}; metadata values must be strings.");
            if (!metadata.TryAdd(key, reader.GetString()!))
                throw SafetensorsFormatException.For(path, $"{MetadataKey} has the key '{key}' twice; keys must be unique.");
        }
    }

    private static RawEntry ParseEntry(ref Utf8JsonReader reader, string name, string path)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw SafetensorsFormatException.ForTensor(path, name, $"the entry must be an object with dtype, shape and data_offsets, found {Describe(ref reader)}.");
        SafetensorsDType? dtype = null;
        ulong[]? shape = null, offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string field = reader.GetString()!;
            reader.Read();
            switch (field)
            {
                case "dtype":
                    if (dtype is not null) throw Duplicate(path, name, field);
                    if (reader.TokenType != JsonTokenType.String)
                        throw SafetensorsFormatException.ForTensor(path, name, $"dtype must be a string, found {Describe(ref reader)}.");
                    string text = reader.GetString()!;
                    if (!SafetensorsDTypeExtensions.TryParseHeaderString(text, out var parsed))
                        throw SafetensorsFormatException.ForTensor(path, name, $"unknown dtype '{text}'.");
                    dtype = parsed;
                    break;
                case "shape":
                    if (shape is not null) throw Duplicate(path, name, field);
                    shape = ReadIntegerArray(ref reader, path, name, field);
                    break;
                case "data_offsets":
                    if (offsets is not null) throw Duplicate(path, name, field);
                    offsets = ReadIntegerArray(ref reader, path, name, field);
                    if (offsets.Length != 2)
                        throw SafetensorsFormatException.ForTensor(path, name, $"data_offsets must be [begin, end], found {offsets.Length} numbers.");
                    break;
                default:
                    // The reference parser (serde, no deny_unknown_fields) ignores other fields; so do we.
                    reader.Skip();
                    break;
            }
        }
        if (dtype is null) throw Missing(path, name, "dtype");
        if (shape is null) throw Missing(path, name, "shape");
        if (offsets is null) throw Missing(path, name, "data_offsets");
        return new RawEntry(name, dtype.Value, shape, offsets[0], offsets[1]);
    }

    private static ulong[] ReadIntegerArray(ref Utf8JsonReader reader, string path, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw SafetensorsFormatException.ForTensor(path, name, $"{field} must be an array of non-negative integers, found {Describe(ref reader)}.");
        var values = new List<ulong>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out ulong value))
                throw SafetensorsFormatException.ForTensor(path, name, $"{field} must hold non-negative integers below 2^64, found {Describe(ref reader)}.");
            values.Add(value);
        }
        return values.ToArray();
    }

    private static SafetensorInfo[] Validate(List<RawEntry> entries, long dataLength, string path)
    {
        // As the reference: sort by (begin, end), then walk with a cursor from 0. Equal offsets keep header order.
        var sorted = entries.Select((e, i) => (Entry: e, Index: i))
            .OrderBy(x => x.Entry.Begin).ThenBy(x => x.Entry.End).ThenBy(x => x.Index)
            .Select(x => x.Entry).ToArray();
        var tensors = new SafetensorInfo[sorted.Length];
        ulong cursor = 0;
        string? previous = null;
        for (int i = 0; i < sorted.Length; i++)
        {
            var (name, dtype, shape, begin, end) = sorted[i];
            string offsets = $"data_offsets [{begin}, {end}]";
            if (end < begin)
                throw SafetensorsFormatException.ForTensor(path, name, $"{offsets} end before they begin.");
            if (begin > cursor)
                throw SafetensorsFormatException.ForTensor(path, name,
                    $"{offsets} leave a gap of {begin - cursor} bytes after data offset {cursor}; tensor data must be contiguous from 0 with no holes.");
            if (begin < cursor)
                throw SafetensorsFormatException.ForTensor(path, name,
                    $"{offsets} overlap tensor '{previous}', which ends at data offset {cursor}.");
            cursor = end;
            previous = name;

            string declared = $"{dtype.ToHeaderString()} {SafetensorInfo.FormatShape(shape)}";
            ulong count = 1;
            foreach (ulong d in shape)
                if (!TryMultiply(count, d, out count))
                    throw SafetensorsFormatException.ForTensor(path, name, $"the element count of shape {SafetensorInfo.FormatShape(shape)} overflows 64 bits.");
            if (!TryMultiply(count, (ulong)dtype.BitSize(), out ulong bits) || count > long.MaxValue)
                throw SafetensorsFormatException.ForTensor(path, name, $"the size of {declared} overflows 64 bits.");
            if (bits % 8 != 0)
                throw SafetensorsFormatException.ForTensor(path, name, $"{declared} is {bits} bits, not a whole number of bytes.");
            if (end - begin != bits / 8)
                throw SafetensorsFormatException.ForTensor(path, name, $"{offsets} hold {end - begin} bytes but {declared} needs {bits / 8}.");

            if (end > (ulong)dataLength)
                throw SafetensorsFormatException.ForTensor(path, name,
                    $"{offsets} run past the {dataLength} bytes of data that follow the header: the file is truncated.");
            if (Array.Exists(shape, d => d > long.MaxValue))
                throw SafetensorsFormatException.ForTensor(path, name, $"shape {SafetensorInfo.FormatShape(shape)} has a dimension above 2^63 - 1.");
            tensors[i] = new SafetensorInfo(name, dtype, Array.ConvertAll(shape, d => (long)d), (long)begin, (long)(end - begin), (long)count);
        }
        if (cursor != (ulong)dataLength)
            throw SafetensorsFormatException.For(path,
                $"the tensors cover {cursor} bytes of data but {dataLength} follow the header: {(ulong)dataLength - cursor} trailing bytes belong to no tensor.");
        return tensors;
    }

    private static bool TryMultiply(ulong a, ulong b, out ulong product)
    {
        UInt128 wide = (UInt128)a * b;
        product = (ulong)wide;
        return wide <= ulong.MaxValue;
    }

    private static SafetensorsFormatException Duplicate(string path, string name, string field) =>
        SafetensorsFormatException.ForTensor(path, name, $"the entry has the field '{field}' twice.");

    private static SafetensorsFormatException Missing(string path, string name, string field) =>
        SafetensorsFormatException.ForTensor(path, name, $"the entry has no '{field}'.");

    private static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.None => "nothing",
        JsonTokenType.String => $"the string \"{reader.GetString()}\"",
        JsonTokenType.Number => $"the number {Encoding.UTF8.GetString(reader.ValueSpan)}",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.True or JsonTokenType.False => reader.TokenType == JsonTokenType.True ? "true" : "false",
        JsonTokenType.Null => "null",
        _ => reader.TokenType.ToString(),
    };
}
