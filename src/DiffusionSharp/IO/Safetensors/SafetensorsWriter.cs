using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// Writes safetensors files laid out as the reference writer lays them out (<c>prepare</c> in
/// huggingface/safetensors <c>tensor.rs</c>): tensors sorted by dtype in descending enum order (largest
/// alignment first), then by name (UTF-8 bytes), packed back to back; the header is compact JSON,
/// <c>__metadata__</c> first, padded with spaces so its length is a multiple of 8, so every tensor of the
/// file is naturally aligned. Metadata keys are written in ordinal order, so equal input gives equal bytes.
/// The file appears whole or not at all: data goes to a temporary file beside it, renamed at the end.
/// Tensor data is streamed to disk; only the header is built in memory.
/// </summary>
public static class SafetensorsWriter
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>A validated tensor with its place in the layout and a way to produce its bytes.</summary>
    private sealed record Planned(string Name, byte[] NameUtf8, SafetensorsDType DType, long[] Shape, long ByteLength, Action<Stream> WriteData);

    /// <summary>Writes tensors given as raw bytes. Invalid input (names, shapes, sizes) throws <see cref="ArgumentException"/> before any file is created.</summary>
    public static void Write(string path, IEnumerable<SafetensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var plan = Plan(tensors, metadata);
        AtomicFile.Write(path, stream => WritePlanned(stream, plan, metadata));
    }

    /// <summary>
    /// Writes float32 tensors stored as <paramref name="dtype"/>: F32 as is, F16 or BF16 rounded to nearest even
    /// (conversion is streamed in small blocks, never a whole converted copy).
    /// </summary>
    public static void Write(string path, IEnumerable<Float32SafetensorEntry> tensors, SafetensorsDType dtype,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var plan = Plan(tensors, dtype, metadata);
        AtomicFile.Write(path, stream => WritePlanned(stream, plan, metadata));
    }

    /// <summary>The same layout written to <paramref name="stream"/> (tests, in-memory use).</summary>
    internal static void Write(Stream stream, IEnumerable<SafetensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        WritePlanned(stream, Plan(tensors, metadata), metadata);

    private static List<Planned> Plan(IEnumerable<SafetensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var plan = new List<Planned>();
        foreach (var entry in tensors)
        {
            ArgumentNullException.ThrowIfNull(entry, nameof(tensors));
            long bytes = CheckedByteLength(entry.Name, entry.DType, entry.Shape);
            if (entry.Data.Length != bytes)
                throw new ArgumentException(
                    $"Tensor '{entry.Name}': {entry.DType.ToHeaderString()} {SafetensorInfo.FormatShape(entry.Shape)} needs {bytes} bytes, the data has {entry.Data.Length}.", nameof(tensors));
            var data = entry.Data;
            plan.Add(new Planned(entry.Name, Utf8(entry.Name, "tensor name"), entry.DType, (long[])entry.Shape.Clone(), bytes, s => s.Write(data.Span)));
        }
        return Sorted(plan, metadata);
    }

    private static List<Planned> Plan(IEnumerable<Float32SafetensorEntry> tensors, SafetensorsDType dtype, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (dtype is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
            throw new ArgumentException($"float32 data can be written as F32, F16 or BF16, not {dtype.ToHeaderString()}.", nameof(dtype));
        var plan = new List<Planned>();
        foreach (var entry in tensors)
        {
            ArgumentNullException.ThrowIfNull(entry, nameof(tensors));
            long bytes = CheckedByteLength(entry.Name, dtype, entry.Shape);
            if (entry.Values.Length * (long)dtype.BitSize() / 8 != bytes)
                throw new ArgumentException(
                    $"Tensor '{entry.Name}': shape {SafetensorInfo.FormatShape(entry.Shape)} has {bytes * 8 / dtype.BitSize()} elements, the data has {entry.Values.Length}.", nameof(tensors));
            var values = entry.Values;
            plan.Add(new Planned(entry.Name, Utf8(entry.Name, "tensor name"), dtype, (long[])entry.Shape.Clone(), bytes, s => WriteConverted(s, values.Span, dtype)));
        }
        return Sorted(plan, metadata);
    }

    private static long CheckedByteLength(string name, SafetensorsDType dtype, long[] shape)
    {
        if (name is null) throw new ArgumentException("A tensor has a null name.", nameof(name));
        if (name == SafetensorsHeader.MetadataKey) throw new ArgumentException($"'{name}' is reserved for the metadata and cannot name a tensor.", nameof(name));
        if (!Enum.IsDefined(dtype)) throw new ArgumentException($"Tensor '{name}': {dtype} is not a safetensors dtype.", nameof(dtype));
        if (shape is null) throw new ArgumentException($"Tensor '{name}' has a null shape.", nameof(shape));
        Int128 bits = dtype.BitSize();
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor '{name}': shape {SafetensorInfo.FormatShape(shape)} has a negative dimension.", nameof(shape));
            bits *= d;
            if (bits > long.MaxValue) throw new ArgumentException($"Tensor '{name}': shape {SafetensorInfo.FormatShape(shape)} is too large.", nameof(shape));
        }
        if (bits % 8 != 0)
            throw new ArgumentException($"Tensor '{name}': {dtype.ToHeaderString()} {SafetensorInfo.FormatShape(shape)} is {bits} bits, not a whole number of bytes.", nameof(shape));
        return (long)(bits / 8);
    }

    private static List<Planned> Sorted(List<Planned> plan, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in plan)
            if (!names.Add(t.Name)) throw new ArgumentException($"Two tensors are named '{t.Name}'; names must be unique.", "tensors");
        if (metadata is not null)
            foreach (var (key, value) in metadata)
            {
                if (key is null || value is null) throw new ArgumentException("Metadata keys and values must not be null.", nameof(metadata));
                Utf8(key, "metadata key");
                Utf8(value, "metadata value");
            }
        plan.Sort((a, b) =>
        {
            int byDType = b.DType.CompareTo(a.DType);
            return byDType != 0 ? byDType : a.NameUtf8.AsSpan().SequenceCompareTo(b.NameUtf8);
        });
        return plan;
    }

    private static void WritePlanned(Stream stream, List<Planned> plan, IReadOnlyDictionary<string, string>? metadata)
    {
        byte[] header = BuildHeader(plan, metadata);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        foreach (var t in plan) t.WriteData(stream);
        stream.Flush();
    }

    /// <summary>Compact JSON as serde_json writes it, padded with spaces to a multiple of 8 bytes.</summary>
    private static byte[] BuildHeader(List<Planned> plan, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new StringBuilder("{");
        bool first = true;
        if (metadata is not null)
        {
            json.Append('"').Append(SafetensorsHeader.MetadataKey).Append("\":{");
            bool firstKey = true;
            foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (!firstKey) json.Append(',');
                AppendString(json, key).Append(':');
                AppendString(json, value);
                firstKey = false;
            }
            json.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (var t in plan)
        {
            if (!first) json.Append(',');
            AppendString(json, t.Name).Append(":{\"dtype\":\"").Append(t.DType.ToHeaderString()).Append("\",\"shape\":[");
            json.AppendJoin(',', t.Shape).Append("],\"data_offsets\":[").Append(offset).Append(',').Append(offset + t.ByteLength).Append("]}");
            offset += t.ByteLength;
            first = false;
        }
        json.Append('}');
        int length = Encoding.UTF8.GetByteCount(json.ToString());
        json.Append(' ', (8 - length % 8) % 8);
        return Encoding.UTF8.GetBytes(json.ToString());
    }

    /// <summary>A JSON string with serde_json's escaping: <c>"</c>, <c>\</c> and control characters only; everything else as UTF-8.</summary>
    private static StringBuilder AppendString(StringBuilder json, string value)
    {
        json.Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                case < ' ': json.Append("\\u00").Append(((int)c).ToString("x2")); break;
                default: json.Append(c); break;
            }
        }
        return json.Append('"');
    }

    private static byte[] Utf8(string value, string what)
    {
        try
        {
            return StrictUtf8.GetBytes(value);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"The {what} '{value}' is not valid UTF-16 (a lone surrogate) and cannot be stored as UTF-8.", e);
        }
    }

    private static void WriteConverted(Stream stream, ReadOnlySpan<float> values, SafetensorsDType dtype)
    {
        if (dtype == SafetensorsDType.F32)
        {
            stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }
        const int Block = 8192;
        Span<byte> buffer = stackalloc byte[2 * Block];
        for (int start = 0; start < values.Length; start += Block)
        {
            var block = values.Slice(start, Math.Min(Block, values.Length - start));
            for (int i = 0; i < block.Length; i++)
            {
                ushort bits = dtype == SafetensorsDType.F16
                    ? DTypeConversion.Float32ToHalfBits(block[i])
                    : DTypeConversion.Float32ToBFloat16Bits(block[i]);
                BinaryPrimitives.WriteUInt16LittleEndian(buffer[(2 * i)..], bits);
            }
            stream.Write(buffer[..(2 * block.Length)]);
        }
    }
}
