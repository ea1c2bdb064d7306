using System.Text.Json.Nodes;
using DiffusionSharp.IO;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Quantization;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Quantization;

/// <summary>
/// The quantized UNet file: writer -> reader round trip of every layer format, the packed nibble layout on disk, and
/// malformed files (each a <see cref="QuantizedFileException"/> naming the file and the tensor or field), plus a fuzz
/// of header bytes that must only ever produce <see cref="FileFormatException"/>s.
/// </summary>
public sealed unsafe class QuantizedUnetFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("quantfile").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static QuantizedFileInfo Info => new() { Method = "svdquant", Rank = 4, GroupSize = 32, Source = "test", SourceSha256 = "00" };

    /// <summary>A W4A4 conv with smoothing and rank 4, a W8A8 linear, an NF4 linear, and one plain tensor.</summary>
    private static (List<QuantizedLayer> Layers, InMemoryWeightSource Plain) Sample()
    {
        var rng = new Random(5);
        byte[] Codes(int n, int lo, int hi) => Enumerable.Range(0, n).Select(_ => (byte)(sbyte)rng.Next(lo, hi)).ToArray();
        float[] Halves(int n, float lo, float hi) => Enumerable.Range(0, n).Select(_ => (float)(Half)(lo + rng.NextSingle() * (hi - lo))).ToArray();
        var conv = new QuantizedLayer
        {
            Key = "down_blocks.0.resnets.0.conv1", IsConvolution = true, InChannels = 5, OutChannels = 7, KernelSize = 3,
            Format = QuantizedLayerFormat.W4A4, GroupSize = 32, Codes = Codes(7 * 45, -8, 8), Scales = Halves(7 * 2, 0.01f, 0.1f),
            Smooth = [0.5f, 1.5f, 2f, 0.25f, 3f], Rank = 4, Down = Halves(45 * 4, -1, 1), Up = Halves(7 * 4, -1, 1), Alpha = 0.5, Beta = 0.5, RelativeError = 0.01,
            AsymmetricActivations = true,
        };
        var w8 = new QuantizedLayer
        {
            Key = "mid_block.attentions.0.proj_in", IsConvolution = false, InChannels = 9, OutChannels = 3, KernelSize = 1,
            Format = QuantizedLayerFormat.W8A8, Codes = Codes(27, -127, 128), Scales = Halves(3, 0.001f, 0.01f),
        };
        var nf4 = new QuantizedLayer
        {
            Key = "up_blocks.0.attentions.0.proj_out", IsConvolution = false, InChannels = 11, OutChannels = 2, KernelSize = 1,
            Format = QuantizedLayerFormat.Nf4, GroupSize = 64, Codes = Codes(22, 0, 16), Scales = Halves(2, 0.1f, 1f),
        };
        var plain = new InMemoryWeightSource();
        plain.Add("conv_in.weight", [0.5f, -0.25f, 1f, 2f], 4);
        plain.Add("down_blocks.0.resnets.0.conv1.bias", [1, 2, 3, 4, 5, 6, 7], 7);
        return ([conv, w8, nf4], plain);
    }

    private string WriteSample(out List<QuantizedLayer> layers)
    {
        var (l, plain) = Sample();
        layers = l;
        string path = Path.Combine(_dir, "q.safetensors");
        QuantizedUnetFile.Write(path, Info, l, plain, plain.Keys.ToList());
        return path;
    }

    [Fact]
    public void Round_trip_restores_every_layer_and_plain_tensor()
    {
        string path = WriteSample(out var layers);
        Assert.True(QuantizedUnetFile.IsQuantizedFile(path));
        using var file = QuantizedUnetFile.Open(path);
        Assert.Equal("svdquant", file.Info.Method);
        Assert.Equal(3, file.Layers.Count);
        foreach (var original in layers)
        {
            var entry = file.Layers.Single(e => e.Key == original.Key);
            var read = file.Read(entry);
            Assert.Equal(original.Codes, read.Codes);
            Assert.Equal(original.Scales, read.Scales);
            Assert.Equal(original.Smooth, read.Smooth);
            Assert.Equal(original.Rank, read.Rank);
            if (original.Rank > 0)
            {
                Assert.Equal(original.Down, read.Down);
                Assert.Equal(original.Up, read.Up);
            }
            Assert.Equal(original.IsConvolution, read.IsConvolution);
            Assert.Equal(original.Alpha, read.Alpha);
            Assert.Equal(original.AsymmetricActivations, read.AsymmetricActivations);
        }
        Assert.Equal(["conv_in.weight", "down_blocks.0.resnets.0.conv1.bias"], file.PlainWeights.Keys.Order(StringComparer.Ordinal));
        var values = new float[4];
        file.PlainWeights.Read("conv_in.weight", values);
        Assert.Equal([0.5f, -0.25f, 1f, 2f], values);
    }

    [Fact]
    public void Bound_layers_compute_what_the_written_layers_compute()
    {
        string path = WriteSample(out var layers);
        using var file = QuantizedUnetFile.Open(path);
        foreach (var original in layers)
        {
            using var expected = original.CreateMatrix();
            using var bound = file.Bind(original.Key, original.InChannels, original.OutChannels, original.KernelSize)!;
            var x = Enumerable.Range(0, 3 * original.K).Select(i => MathF.Sin(i)).ToArray();
            var a = new float[3 * original.OutChannels];
            var b = new float[3 * original.OutChannels];
            fixed (float* px = x, pa = a, pb = b)
            {
                expected.Forward(ActivationRows.Matrix(px, original.K, original.K), 3, null, pa, original.OutChannels);
                bound.Forward(ActivationRows.Matrix(px, original.K, original.K), 3, null, pb, original.OutChannels);
            }
            Assert.Equal(a, b);
        }
        Assert.Null(file.Bind("conv_out", 4, 4, 3));
        file.CheckAllBound();
    }

    [Fact]
    public void Int4_codes_are_stored_two_per_byte_low_nibble_first()
    {
        string path = WriteSample(out var layers);
        using var raw = SafetensorsFile.Open(path);
        var info = raw.GetInfo("down_blocks.0.resnets.0.conv1.qweight");
        Assert.Equal(SafetensorsDType.U8, info.DType);
        Assert.Equal(new long[] { 7, 23 }, info.Shape);
        var bytes = raw.GetBytes(info);
        var codes = layers[0].Codes;
        Assert.Equal((codes[1 * 45 + 6] & 0x0F) | ((codes[1 * 45 + 7] & 0x0F) << 4), bytes[1 * 23 + 3]);
        Assert.Equal(codes[1 * 45 + 44] & 0x0F, bytes[1 * 23 + 22]);
        Assert.Equal(SafetensorsDType.F16, raw.GetInfo("down_blocks.0.resnets.0.conv1.proj_down").DType);
        Assert.Equal(SafetensorsDType.F32, raw.GetInfo("down_blocks.0.resnets.0.conv1.smooth").DType);
        Assert.Equal(SafetensorsDType.I8, raw.GetInfo("mid_block.attentions.0.proj_in.qweight").DType);
        Assert.Equal(QuantizedUnetFile.FormatName, raw.Metadata["format"]);
    }

    public static TheoryData<string, string> Malformations => new()
    {
        { "no-format", "'format' is missing" },
        { "version", "format version '9'" },
        { "layers-json", "not valid JSON" },
        { "layers-array", "must be a JSON object" },
        { "kind", "kind 'dense'" },
        { "format-name", "format 'int3'" },
        { "group", "group 20" },
        { "missing-in", "'in' must be an integer" },
        { "missing-tensor", "'down_blocks.0.resnets.0.conv1.qweight' is missing" },
        { "wrong-dtype", "'mid_block.attentions.0.proj_in.qweight' is U8, expected I8" },
        { "wrong-shape", "'down_blocks.0.resnets.0.conv1.wscales' has shape [7, 3], expected [7, 2]" },
        { "undeclared-smooth", "'mid_block.attentions.0.proj_in.smooth' is present" },
        { "weight-too", "also holds 'mid_block.attentions.0.proj_in.weight'" },
        { "activations", "activations 'unsigned' is not 'symmetric' or 'asymmetric'" },
        { "asymmetric-w8a8", "activations 'asymmetric' is not 'symmetric' (asymmetric activations are a w4a4 option)" },
    };

    [Theory]
    [MemberData(nameof(Malformations))]
    public void Malformed_files_are_refused_naming_file_and_tensor(string malformation, string expected)
    {
        string path = WriteSample(out _);
        string bad = Mutate(path, malformation);
        var e = Assert.Throws<QuantizedFileException>(() => QuantizedUnetFile.Open(bad).Dispose());
        Assert.Contains(bad, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Equal(bad, e.FilePath);
    }

    [Fact]
    public void Invalid_values_and_wrong_shapes_are_refused_at_bind()
    {
        string path = WriteSample(out _);
        string bad = Mutate(path, "nan-scale");
        using (var file = QuantizedUnetFile.Open(bad))
        {
            var e = Assert.Throws<QuantizedFileException>(() => file.Bind("mid_block.attentions.0.proj_in", 9, 3, 1));
            Assert.Contains("invalid values", e.Message);
            Assert.Equal("mid_block.attentions.0.proj_in", e.TensorName);
        }
        using (var file = QuantizedUnetFile.Open(path))
        {
            var e = Assert.Throws<QuantizedFileException>(() => file.Bind("mid_block.attentions.0.proj_in", 9, 4, 1));
            Assert.Contains("made for another model", e.Message);
            var unbound = Assert.Throws<QuantizedFileException>(file.CheckAllBound);
            Assert.Contains("not part of the model", unbound.Message);
        }
    }

    [Fact]
    public void Fuzzed_headers_fail_only_as_file_format_errors()
    {
        string path = WriteSample(out var layers);
        byte[] original = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(original, 0);
        var rng = new Random(77);
        string fuzzed = Path.Combine(_dir, "fuzz.safetensors");
        int opened = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])original.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++)
            {
                int at = 8 + rng.Next((int)headerLength);
                bytes[at] = rng.Next(3) switch { 0 => (byte)rng.Next(256), 1 => (byte)'9', _ => (byte)'"' };
            }
            File.WriteAllBytes(fuzzed, bytes);
            try
            {
                using var file = QuantizedUnetFile.Open(fuzzed);
                opened++;
                foreach (var l in file.Layers) file.Bind(l.Key, l.InChannels, l.OutChannels, l.KernelSize)?.Dispose();
            }
            catch (FileFormatException)
            {
            }
        }
        Assert.InRange(opened, 1, 299);
    }

    /// <summary>Rewrites the sample with one thing wrong.</summary>
    private string Mutate(string path, string malformation)
    {
        using var file = SafetensorsFile.Open(path);
        var meta = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        var tensors = file.Tensors.ToDictionary(t => t.Name, t => new SafetensorEntry(t.Name, t.DType, t.Shape, file.GetBytes(t).ToArray()));
        var layers = JsonNode.Parse(meta["layers"])!.AsObject();
        const string Conv = "down_blocks.0.resnets.0.conv1", W8 = "mid_block.attentions.0.proj_in";
        switch (malformation)
        {
            case "no-format": meta.Remove("format"); break;
            case "version": meta["format_version"] = "9"; break;
            case "layers-json": meta["layers"] = "{\"a\": [1,"; break;
            case "layers-array": meta["layers"] = "[1, 2]"; break;
            case "kind": layers[Conv]!["kind"] = "dense"; break;
            case "format-name": layers[Conv]!["format"] = "int3"; break;
            case "group": layers[Conv]!["group"] = 20; break;
            case "activations": layers[Conv]!["activations"] = "unsigned"; break;
            case "asymmetric-w8a8": layers[W8]!["activations"] = "asymmetric"; break;
            case "missing-in": layers[W8]!.AsObject().Remove("in"); break;
            case "missing-tensor": tensors.Remove(Conv + ".qweight"); break;
            case "wrong-dtype": tensors[W8 + ".qweight"] = tensors[W8 + ".qweight"] with { DType = SafetensorsDType.U8 }; break;
            case "wrong-shape": tensors[Conv + ".wscales"] = new SafetensorEntry(Conv + ".wscales", SafetensorsDType.F16, [7, 3], new byte[42]); break;
            case "undeclared-smooth": tensors[W8 + ".smooth"] = new SafetensorEntry(W8 + ".smooth", SafetensorsDType.F32, [9], new byte[36]); break;
            case "weight-too": tensors[W8 + ".weight"] = new SafetensorEntry(W8 + ".weight", SafetensorsDType.F16, [3, 9], new byte[54]); break;
            case "nan-scale":
                var scales = tensors[W8 + ".wscales"].Data.ToArray();
                scales[2] = 0x00;
                scales[3] = 0x7E;
                tensors[W8 + ".wscales"] = tensors[W8 + ".wscales"] with { Data = scales };
                break;
            default: throw new ArgumentException(malformation);
        }
        if (malformation is "kind" or "format-name" or "group" or "missing-in" or "activations" or "asymmetric-w8a8") meta["layers"] = layers.ToJsonString();
        string bad = Path.Combine(_dir, malformation + ".safetensors");
        SafetensorsWriter.Write(bad, tensors.Values, meta);
        return bad;
    }
}
