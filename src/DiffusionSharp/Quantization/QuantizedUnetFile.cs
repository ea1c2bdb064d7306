using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionSharp.IO;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Nn;

namespace DiffusionSharp.Quantization;

/// <summary>What a quantized file records about how it was made.</summary>
public sealed record QuantizedFileInfo
{
    /// <summary>The algorithm: svdquant, w4a4-smooth, w4a4-naive, w8a8 or nf4 (<see cref="QuantizationMethods"/>).</summary>
    public required string Method { get; init; }
    public int Rank { get; init; }
    public int GroupSize { get; init; }
    /// <summary>The model it was made from (as given on the command line).</summary>
    public required string Source { get; init; }
    /// <summary>SHA-256 (hex) of the source model's UNet weight file(s), to tell which model a file belongs to.</summary>
    public required string SourceSha256 { get; init; }
    /// <summary>Calibration settings, as a JSON object (free-form, for the record).</summary>
    public string Calibration { get; init; } = "{}";
}

/// <summary>
/// A quantized UNet as one safetensors file (layout in docs/QUANTIZATION.md): every UNet tensor of the source model
/// under its diffusers key, except the <c>weight</c> of each quantized layer, which is replaced by
/// <c>KEY.qweight</c> (codes), <c>KEY.wscales</c> (fp16 scales) and optionally <c>KEY.smooth</c> (fp32 λ per input
/// channel), <c>KEY.proj_down</c> [K, r] and <c>KEY.proj_up</c> [N, r] (fp16). The other tensors are stored fp16.
/// Metadata: <c>format</c> = <see cref="FormatName"/>, <c>format_version</c>, <c>method</c>, <c>rank</c>,
/// <c>group</c>, <c>source</c>, <c>source_sha256</c>, <c>calibration</c> (JSON) and <c>layers</c> (JSON: key ->
/// kind, in, out, kernel, format, group, rank, smooth, alpha, beta, error).
/// <para>
/// Opening reads and checks the header: metadata, every layer entry and the dtype and shape of every tensor it
/// names. <see cref="Bind"/> (the <see cref="IQuantizedLayers"/> seam) checks the values and packs a layer for the
/// kernels; <see cref="PlainWeights"/> serves the other tensors to the layers that stay fp32. Every problem is a
/// <see cref="QuantizedFileException"/> naming the file and the tensor or field.
/// </para>
/// </summary>
public sealed class QuantizedUnetFile : IQuantizedLayers, IDisposable
{
    public const string FormatName = "diffusionsharp.quantized-unet";
    public const string FormatVersion = "1";

    private static readonly string[] Suffixes = [".qweight", ".wscales", ".smooth", ".proj_down", ".proj_up"];

    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, LayerEntry> _layers;
    private readonly HashSet<string> _bound = new(StringComparer.Ordinal);

    /// <summary>A layer as the header describes it.</summary>
    public sealed record LayerEntry(string Key, bool IsConvolution, int InChannels, int OutChannels, int KernelSize,
        QuantizedLayerFormat Format, int GroupSize, int Rank, bool HasSmoothing, double? Alpha, double? Beta, double? RelativeError,
        bool AsymmetricActivations = false)
    {
        public int K => KernelSize * KernelSize * InChannels;
    }

    public string Path { get; }
    public QuantizedFileInfo Info { get; }
    public IReadOnlyCollection<LayerEntry> Layers => _layers.Values;

    /// <summary>The tensors of the layers that are not quantized (and the biases of those that are), by diffusers key.</summary>
    public IWeightSource PlainWeights { get; }

    private QuantizedUnetFile(string path, SafetensorsFile file, QuantizedFileInfo info, Dictionary<string, LayerEntry> layers)
    {
        Path = path;
        _file = file;
        Info = info;
        _layers = layers;
        PlainWeights = new SafetensorsWeightSource([file], keyMap: name => IsQuantizedTensor(name) ? null : name);
    }

    /// <summary>Whether <paramref name="path"/> is a safetensors file whose metadata says it is a quantized UNet.</summary>
    public static bool IsQuantizedFile(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Metadata.TryGetValue("format", out var format) && format == FormatName;
    }

    public static QuantizedUnetFile Open(string path)
    {
        var file = SafetensorsFile.Open(path);
        try
        {
            var meta = file.Metadata;
            string Field(string name) => meta.TryGetValue(name, out var v) ? v : throw Error(path, null, $"the metadata has no '{name}' field.");
            if (!meta.TryGetValue("format", out var format) || format != FormatName)
                throw Error(path, null, $"not a quantized UNet: the metadata 'format' is {(format == null ? "missing" : $"'{format}'")}, expected '{FormatName}'.");
            if (Field("format_version") != FormatVersion)
                throw Error(path, null, $"format version '{meta["format_version"]}' is not supported (this build reads version {FormatVersion}).");
            var info = new QuantizedFileInfo
            {
                Method = Field("method"),
                Rank = ParseInt(path, "rank", Field("rank")),
                GroupSize = ParseInt(path, "group", Field("group")),
                Source = Field("source"),
                SourceSha256 = Field("source_sha256"),
                Calibration = meta.TryGetValue("calibration", out var c) ? c : "{}",
            };
            var layers = ParseLayers(path, Field("layers"));
            foreach (var layer in layers.Values) CheckTensors(path, file, layer);
            return new QuantizedUnetFile(path, file, info, layers);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // ------------------------------------------------------------------------------------------------ reading

    private static Dictionary<string, LayerEntry> ParseLayers(string path, string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw Error(path, null, $"the metadata 'layers' is not valid JSON ({e.Message}).");
        }
        if (root is not JsonObject layers) throw Error(path, null, "the metadata 'layers' must be a JSON object of layer entries.");
        var result = new Dictionary<string, LayerEntry>(StringComparer.Ordinal);
        foreach (var (key, node) in layers)
        {
            if (node is not JsonObject o) throw Error(path, key, $"layer '{key}': the entry must be a JSON object.");
            string kind = Text(path, key, o, "kind");
            if (kind is not ("linear" or "conv")) throw Error(path, key, $"layer '{key}': kind '{kind}' is neither 'linear' nor 'conv'.");
            var fmt = Text(path, key, o, "format") switch
            {
                "w4a4" => QuantizedLayerFormat.W4A4,
                "w8a8" => QuantizedLayerFormat.W8A8,
                "nf4" => QuantizedLayerFormat.Nf4,
                var other => throw Error(path, key, $"layer '{key}': format '{other}' is not w4a4, w8a8 or nf4."),
            };
            int inChannels = Number(path, key, o, "in", 1, 1 << 20), outChannels = Number(path, key, o, "out", 1, 1 << 20);
            int kernel = Number(path, key, o, "kernel", 1, 15);
            int group = fmt == QuantizedLayerFormat.W8A8 ? 0 : Number(path, key, o, "group", 1, 1 << 20);
            if (fmt == QuantizedLayerFormat.W4A4 && (group < 16 || group > 256 || group % 16 != 0))
                throw Error(path, key, $"layer '{key}': group {group} is not a multiple of 16 from 16 to 256.");
            int rank = o.ContainsKey("rank") ? Number(path, key, o, "rank", 0, 1 << 16) : 0;
            bool smooth = o["smooth"] is JsonValue sv && sv.TryGetValue(out bool b) && b;
            if (fmt == QuantizedLayerFormat.Nf4 && (rank > 0 || smooth))
                throw Error(path, key, $"layer '{key}': an NF4 layer has no smoothing or low-rank branch.");
            bool asymmetric = o.ContainsKey("activations") && Text(path, key, o, "activations") switch
            {
                "symmetric" => false,
                "asymmetric" when fmt == QuantizedLayerFormat.W4A4 => true,
                var other => throw Error(path, key, $"layer '{key}': activations '{other}' is not 'symmetric'" +
                    (fmt == QuantizedLayerFormat.W4A4 ? " or 'asymmetric'." : $" (asymmetric activations are a w4a4 option).")),
            };
            result[key] = new LayerEntry(key, kind == "conv", inChannels, outChannels, kernel, fmt, group, rank, smooth,
                Optional(o, "alpha"), Optional(o, "beta"), Optional(o, "error"), asymmetric);
        }
        return result;
    }

    private static void CheckTensors(string path, SafetensorsFile file, LayerEntry l)
    {
        int n = l.OutChannels, k = l.K;
        if (file.Contains(l.Key + ".weight"))
            throw Error(path, l.Key + ".weight", $"layer '{l.Key}' is quantized but the file also holds '{l.Key}.weight'.");
        if (l.Format == QuantizedLayerFormat.W8A8)
        {
            Expect(path, file, l.Key + ".qweight", SafetensorsDType.I8, n, k);
            Expect(path, file, l.Key + ".wscales", SafetensorsDType.F16, n);
        }
        else
        {
            Expect(path, file, l.Key + ".qweight", SafetensorsDType.U8, n, (k + 1) / 2);
            Expect(path, file, l.Key + ".wscales", SafetensorsDType.F16, n, (k + l.GroupSize - 1) / l.GroupSize);
        }
        if (l.HasSmoothing) Expect(path, file, l.Key + ".smooth", SafetensorsDType.F32, l.InChannels);
        else Absent(path, file, l.Key + ".smooth");
        if (l.Rank > 0)
        {
            Expect(path, file, l.Key + ".proj_down", SafetensorsDType.F16, k, l.Rank);
            Expect(path, file, l.Key + ".proj_up", SafetensorsDType.F16, n, l.Rank);
        }
        else
        {
            Absent(path, file, l.Key + ".proj_down");
            Absent(path, file, l.Key + ".proj_up");
        }
    }

    public QuantizedMatrix? Bind(string layerKey, int inChannels, int outChannels, int kernelSize)
    {
        if (!_layers.TryGetValue(layerKey, out var l)) return null;
        if (l.InChannels != inChannels || l.OutChannels != outChannels || l.KernelSize != kernelSize)
            throw Error(Path, layerKey, $"quantized layer '{layerKey}' is [{l.OutChannels}, {l.InChannels}, {l.KernelSize}, {l.KernelSize}], " +
                $"but the model needs [{outChannels}, {inChannels}, {kernelSize}, {kernelSize}]: the file was made for another model.");
        var layer = Read(l);
        QuantizedMatrix matrix;
        try
        {
            matrix = layer.CreateMatrix();
        }
        catch (ArgumentException e)
        {
            throw Error(Path, layerKey, $"quantized layer '{layerKey}' holds invalid values: {e.Message}");
        }
        _bound.Add(layerKey);
        return matrix;
    }

    /// <summary>The logical form of a layer (codes unpacked, fp16 converted).</summary>
    public QuantizedLayer Read(LayerEntry l)
    {
        int n = l.OutChannels, k = l.K;
        byte[] codes;
        float[] scales = ReadFloats(l.Key + ".wscales");
        var raw = _file.GetBytes(_file.GetInfo(l.Key + ".qweight"));
        if (l.Format == QuantizedLayerFormat.W8A8)
        {
            codes = raw.ToArray();
        }
        else
        {
            codes = new byte[(long)n * k];
            int rowBytes = (k + 1) / 2;
            bool signed = l.Format == QuantizedLayerFormat.W4A4;
            for (int o = 0; o < n; o++)
            for (int i = 0; i < k; i++)
            {
                int nibble = (raw[o * rowBytes + i / 2] >> (4 * (i % 2))) & 0x0F;
                codes[(long)o * k + i] = (byte)(signed ? (sbyte)(nibble >= 8 ? nibble - 16 : nibble) : nibble);
            }
        }
        return new QuantizedLayer
        {
            Key = l.Key, IsConvolution = l.IsConvolution, InChannels = l.InChannels, OutChannels = n, KernelSize = l.KernelSize,
            Format = l.Format, GroupSize = l.GroupSize, Codes = codes, Scales = scales,
            Smooth = l.HasSmoothing ? ReadFloats(l.Key + ".smooth") : null,
            Rank = l.Rank,
            Down = l.Rank > 0 ? ReadFloats(l.Key + ".proj_down") : [],
            Up = l.Rank > 0 ? ReadFloats(l.Key + ".proj_up") : [],
            Alpha = l.Alpha, Beta = l.Beta, RelativeError = l.RelativeError,
            AsymmetricActivations = l.AsymmetricActivations,
        };
    }

    /// <summary>Throws when a quantized layer of the file was never bound: the file does not belong to the model loaded.</summary>
    public void CheckAllBound()
    {
        var unbound = _layers.Keys.Where(k => !_bound.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unbound.Count > 0)
            throw Error(Path, unbound[0], $"{unbound.Count} quantized layers are not part of the model being loaded (first: '{unbound[0]}'): the file was made for another model.");
    }

    private float[] ReadFloats(string name) => _file.ReadFloat32(name);

    private bool IsQuantizedTensor(string name)
    {
        foreach (string suffix in Suffixes)
            if (name.EndsWith(suffix, StringComparison.Ordinal) && _layers.ContainsKey(name[..^suffix.Length])) return true;
        return false;
    }

    private static void Expect(string path, SafetensorsFile file, string name, SafetensorsDType dtype, params long[] shape)
    {
        if (!file.TryGetInfo(name, out var info)) throw Error(path, name, $"tensor '{name}' is missing.");
        if (info.DType != dtype) throw Error(path, name, $"tensor '{name}' is {info.DType.ToHeaderString()}, expected {dtype.ToHeaderString()}.");
        if (!info.Shape.AsSpan().SequenceEqual(shape))
            throw Error(path, name, $"tensor '{name}' has shape {SafetensorInfo.FormatShape(info.Shape)}, expected {SafetensorInfo.FormatShape(shape)}.");
    }

    private static void Absent(string path, SafetensorsFile file, string name)
    {
        if (file.Contains(name)) throw Error(path, name, $"tensor '{name}' is present, but its layer entry does not use it.");
    }

    private static string Text(string path, string key, JsonObject o, string field)
        => o[field] is JsonValue v && v.TryGetValue(out string? s) ? s : throw Error(path, key, $"layer '{key}': '{field}' must be a string.");

    private static int Number(string path, string key, JsonObject o, string field, int min, int max)
        => o[field] is JsonValue v && v.TryGetValue(out int i) && i >= min && i <= max
            ? i
            : throw Error(path, key, $"layer '{key}': '{field}' must be an integer from {min} to {max}.");

    private static double? Optional(JsonObject o, string field) => o[field] is JsonValue v && v.TryGetValue(out double d) ? d : null;

    private static int ParseInt(string path, string field, string value)
        => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int i) ? i : throw Error(path, null, $"the metadata '{field}' is '{value}', not a number.");

    private static QuantizedFileException Error(string path, string? tensor, string message)
        => new($"{path}: {message}") { FilePath = path, TensorName = tensor };

    public void Dispose() => _file.Dispose();

    // ------------------------------------------------------------------------------------------------ writing

    /// <summary>
    /// Writes <paramref name="layers"/> and the <paramref name="plainKeys"/> tensors of <paramref name="plain"/> (as fp16)
    /// to <paramref name="path"/>, atomically: a failure leaves no file (and an existing one untouched).
    /// </summary>
    public static void Write(string path, QuantizedFileInfo info, IReadOnlyList<QuantizedLayer> layers, IWeightSource plain, IEnumerable<string> plainKeys)
    {
        var entries = new List<SafetensorEntry>();
        var table = new JsonObject();
        foreach (var l in layers)
        {
            entries.AddRange(Entries(l));
            var o = new JsonObject
            {
                ["kind"] = l.IsConvolution ? "conv" : "linear",
                ["in"] = l.InChannels,
                ["out"] = l.OutChannels,
                ["kernel"] = l.KernelSize,
                ["format"] = l.Format switch { QuantizedLayerFormat.W8A8 => "w8a8", QuantizedLayerFormat.Nf4 => "nf4", _ => "w4a4" },
            };
            if (l.Format != QuantizedLayerFormat.W8A8) o["group"] = l.GroupSize;
            if (l.Rank > 0) o["rank"] = l.Rank;
            if (l.Smooth != null) o["smooth"] = true;
            if (l.AsymmetricActivations) o["activations"] = "asymmetric";
            if (l.Alpha is { } a) o["alpha"] = a;
            if (l.Beta is { } b) o["beta"] = b;
            if (l.RelativeError is { } e) o["error"] = e;
            table[l.Key] = o;
        }
        foreach (string key in plainKeys)
        {
            var shape = plain.GetShape(key);
            var values = new float[checked((int)shape.Aggregate(1L, (x, y) => x * y))];
            plain.Read(key, values);
            entries.Add(Half(key, values, shape));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["method"] = info.Method,
            ["rank"] = info.Rank.ToString(CultureInfo.InvariantCulture),
            ["group"] = info.GroupSize.ToString(CultureInfo.InvariantCulture),
            ["source"] = info.Source,
            ["source_sha256"] = info.SourceSha256,
            ["calibration"] = info.Calibration,
            ["layers"] = table.ToJsonString(),
        };
        SafetensorsWriter.Write(path, entries, metadata);
    }

    private static IEnumerable<SafetensorEntry> Entries(QuantizedLayer l)
    {
        int n = l.OutChannels, k = l.K;
        if (l.Codes.Length != (long)n * k) throw new ArgumentException($"Layer '{l.Key}': {l.Codes.Length} codes for [{n}, {k}].");
        if (l.Format == QuantizedLayerFormat.W8A8)
        {
            yield return new SafetensorEntry(l.Key + ".qweight", SafetensorsDType.I8, [n, k], l.Codes);
            yield return Half(l.Key + ".wscales", l.Scales, [n]);
        }
        else
        {
            int rowBytes = (k + 1) / 2;
            var packed = new byte[(long)n * rowBytes];
            for (int o = 0; o < n; o++)
            for (int i = 0; i < k; i++)
                packed[(long)o * rowBytes + i / 2] |= (byte)((l.Codes[(long)o * k + i] & 0x0F) << (4 * (i % 2)));
            yield return new SafetensorEntry(l.Key + ".qweight", SafetensorsDType.U8, [n, rowBytes], packed);
            yield return Half(l.Key + ".wscales", l.Scales, [n, l.Groups]);
        }
        if (l.Smooth != null)
        {
            var bytes = new byte[l.Smooth.Length * sizeof(float)];
            for (int i = 0; i < l.Smooth.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), l.Smooth[i]);
            yield return new SafetensorEntry(l.Key + ".smooth", SafetensorsDType.F32, [l.InChannels], bytes);
        }
        if (l.Rank > 0)
        {
            yield return Half(l.Key + ".proj_down", l.Down!, [k, l.Rank]);
            yield return Half(l.Key + ".proj_up", l.Up!, [n, l.Rank]);
        }
    }

    private static SafetensorEntry Half(string name, float[] values, long[] shape)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), DTypeConversion.Float32ToHalfBits(values[i]));
        return new SafetensorEntry(name, SafetensorsDType.F16, shape, bytes);
    }
}

/// <summary>A quantized model file that cannot be used: the message names the file and the tensor or field.</summary>
public sealed class QuantizedFileException(string message) : FileFormatException(message)
{
    public string? TensorName { get; init; }
}
