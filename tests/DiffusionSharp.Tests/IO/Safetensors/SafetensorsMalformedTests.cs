using System.Buffers.Binary;
using System.Text;
using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Tests.IO.Safetensors;

/// <summary>
/// One test per failure mode of the reference parser (and duplicate keys): each must be a
/// SafetensorsFormatException whose message names the file and, where there is one, the tensor.
/// </summary>
public class SafetensorsMalformedTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>8-byte little-endian length (the real one unless given), the header bytes, then the data.</summary>
    private static byte[] File(byte[] header, int dataBytes, ulong? declaredLength = null)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < dataBytes; i++) bytes[8 + header.Length + i] = (byte)(i * 7);
        return bytes;
    }

    private static byte[] File(string header, int dataBytes, ulong? declaredLength = null) =>
        File(Encoding.UTF8.GetBytes(header), dataBytes, declaredLength);

    private SafetensorsFormatException Fails(byte[] bytes, string fileName, string? tensor = null, string? mentions = null)
    {
        string path = _folder.Write(fileName, bytes);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Equal(path, e.FilePath);
        if (tensor is not null)
        {
            Assert.Contains($"tensor '{tensor}'", e.Message);
            Assert.Equal(tensor, e.TensorName);
        }
        if (mentions is not null) Assert.Contains(mentions, e.Message);
        return e;
    }

    private const string Good = """{"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"U8","shape":[4],"data_offsets":[12,16]}}""";

    [Fact]
    public void WellFormedBaseline_Opens()
    {
        string path = _folder.Write("good.safetensors", File(Good, 16));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a", "b"], file.Tensors.Select(t => t.Name));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void ShorterThan8Bytes(int length) =>
        Fails(new byte[length], $"short{length}.safetensors", mentions: "too short");

    [Fact]
    public void HeaderLength10GB_IsRejectedWithoutAllocating()
    {
        string path = _folder.Write("huge-header.safetensors", File("{}", 0, declaredLength: 10_000_000_000));
        SafetensorsFile.Open(_folder.Write("warmup.safetensors", File("{}", 0))).Dispose();
        try { SafetensorsFile.Open(path); } catch (SafetensorsFormatException) { }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("10000000000", e.Message);
        Assert.Contains("limit", e.Message);
        Assert.True(allocated < 64 * 1024, $"rejecting the header allocated {allocated} bytes");
    }

    [Fact]
    public void HeaderLengthJustOverTheLimit_IsRejected() =>
        Fails(File("{}", 0, declaredLength: 100_000_001), "limit.safetensors", mentions: "100,000,000");

    [Fact]
    public void HeaderLengthPastEndOfFile_ByOneByte() =>
        Fails(File("{}", 0, declaredLength: 2 + 1), "past.safetensors", mentions: "runs past the end");

    [Fact]
    public void InvalidUtf8() =>
        Fails(File([(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'], 0), "utf8.safetensors", mentions: "UTF-8");

    [Theory]
    [InlineData("{\"a\":")]
    [InlineData("{'a': 1}")]
    [InlineData("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12],}}")]
    [InlineData("{} {}")]
    [InlineData("{}x")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("{/*c*/}")]
    public void InvalidJson(string header) =>
        Fails(File(header, 0), "json.safetensors", mentions: "JSON");

    [Theory]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    [InlineData("12")]
    [InlineData("null")]
    public void HeaderNotAnObject(string header) =>
        Fails(File(header, 0), "notobject.safetensors", mentions: "JSON object");

    [Fact]
    public void Utf8ByteOrderMark_IsRejectedAsSerdeJsonDoes() =>
        Fails(File([0xEF, 0xBB, 0xBF, (byte)'{', (byte)'}'], 0), "bom.safetensors");

    [Fact]
    public void LeadingAndTrailingWhitespace_IsAccepted()
    {
        string path = _folder.Write("ws.safetensors", File(" \t\r\n" + Good + "\n\t  ", 16));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(2, file.Tensors.Count);
    }

    [Fact]
    public void TruncatedData() =>
        Fails(File(Good, 15), "truncated.safetensors", tensor: "b", mentions: "truncated");

    [Fact]
    public void TrailingGarbage() =>
        Fails(File(Good, 17), "trailing.safetensors", mentions: "1 trailing bytes");

    [Fact]
    public void OverlappingOffsets() =>
        Fails(File("""{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}""", 8),
            "overlap.safetensors", tensor: "b", mentions: "overlap tensor 'a'");

    [Fact]
    public void GapBetweenTensors() =>
        Fails(File("""{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}}""", 10),
            "gap.safetensors", tensor: "b", mentions: "gap of 2 bytes");

    [Fact]
    public void DataNotStartingAtZero() =>
        Fails(File("""{"a":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}""", 6), "start.safetensors", tensor: "a", mentions: "gap");

    [Fact]
    public void OffsetsListedOutOfOrder_ButContiguous_AreAccepted()
    {
        // The reference parser sorts by offset; only holes and overlaps are errors, not header order.
        string path = _folder.Write("order.safetensors", File(
            """{"late":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"early":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}""", 8));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["early", "late"], file.Tensors.Select(t => t.Name));
        Assert.Equal([4f, 5f, 6f, 7f], file.ReadFloat32("late").Select(v => v / 7f));
    }

    [Fact]
    public void OffsetsEndBeforeBegin() =>
        Fails(File("""{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}""", 4),
            "reversed.safetensors", mentions: "before they begin");

    [Fact]
    public void WrongByteSizeForDType() =>
        Fails(File("""{"conv_in.weight":{"dtype":"F16","shape":[3,3],"data_offsets":[0,10]}}""", 10),
            "model.safetensors", tensor: "conv_in.weight", mentions: "data_offsets [0, 10] hold 10 bytes but F16 [3, 3] needs 18");

    [Fact]
    public void SubByteDTypeNotFillingWholeBytes() =>
        Fails(File("""{"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}""", 2), "f4.safetensors", tensor: "q", mentions: "12 bits");

    [Fact]
    public void SubByteDTypeFillingWholeBytes_IsAccepted()
    {
        string path = _folder.Write("f6.safetensors", File("""{"q":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[0,3]}}""", 3));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(3, file.GetInfo("q").ByteLength);
    }

    [Theory]
    [InlineData("F128")]
    [InlineData("f16")]
    [InlineData("F8_E4M3FN")]
    [InlineData("")]
    public void UnknownDType(string dtype) =>
        Fails(File($$$"""{"w":{"dtype":"{{{dtype}}}","shape":[1],"data_offsets":[0,2]}}""", 2), "dtype.safetensors", tensor: "w", mentions: "unknown dtype");

    [Theory]
    [InlineData("[-3]")]
    [InlineData("[2,-1]")]
    [InlineData("[1.5]")]
    [InlineData("[1e2]")]
    [InlineData("[\"2\"]")]
    [InlineData("[18446744073709551616]")]
    [InlineData("3")]
    [InlineData("null")]
    public void BadShape(string shape) =>
        Fails(File($$$"""{"w":{"dtype":"U8","shape":{{{shape}}},"data_offsets":[0,2]}}""", 2), "shape.safetensors", tensor: "w", mentions: "shape");

    [Theory]
    [InlineData("[0]")]
    [InlineData("[0,1,2]")]
    [InlineData("[-1,2]")]
    [InlineData("{\"begin\":0}")]
    public void BadDataOffsets(string offsets) =>
        Fails(File($$$"""{"w":{"dtype":"U8","shape":[2],"data_offsets":{{{offsets}}}}}""", 2), "offsets.safetensors", tensor: "w", mentions: "data_offsets");

    [Fact]
    public void ShapeProductOverflow() =>
        Fails(File("""{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""", 0),
            "overflow.safetensors", tensor: "w", mentions: "overflows 64 bits");

    [Fact]
    public void ByteSizeOverflow() =>
        Fails(File("""{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}""", 0),
            "overflow-bits.safetensors", tensor: "w", mentions: "overflows 64 bits");

    [Fact]
    public void OffsetsBeyondFile_HugeValues() =>
        Fails(File("""{"w":{"dtype":"U8","shape":[2],"data_offsets":[18446744073709551613,18446744073709551615]}}""", 2),
            "huge-offsets.safetensors", tensor: "w");

    [Fact]
    public void ShapeWithZeroAndHugeDimension_IsAccepted_AsTheReferenceDoes()
    {
        string path = _folder.Write("zero.safetensors", File("""{"w":{"dtype":"F32","shape":[0,9223372036854775807],"data_offsets":[0,0]}}""", 0));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(0, file.GetInfo("w").ElementCount);
        Assert.Empty(file.ReadFloat32("w"));
    }

    [Fact]
    public void DuplicateTensorKey() =>
        Fails(File("""{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"w":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}""", 4),
            "dup.safetensors", mentions: "'w' twice");

    [Fact]
    public void DuplicateKeyWrittenWithAnEscape_IsStillADuplicate() =>
        Fails(File("""{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"\u0077":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}""", 4),
            "dup-escaped.safetensors", mentions: "twice");

    [Fact]
    public void DuplicateFieldInEntry() =>
        Fails(File("""{"w":{"dtype":"U8","dtype":"I8","shape":[2],"data_offsets":[0,2]}}""", 2), "dupfield.safetensors", tensor: "w", mentions: "twice");

    [Fact]
    public void DuplicateMetadataKey() =>
        Fails(File("""{"__metadata__":{"k":"a","k":"b"}}""", 0), "dupmeta.safetensors", mentions: "twice");

    [Theory]
    [InlineData("{\"k\":1}")]
    [InlineData("{\"k\":{\"nested\":\"x\"}}")]
    [InlineData("{\"k\":null}")]
    [InlineData("{\"k\":[\"a\"]}")]
    [InlineData("\"text\"")]
    [InlineData("[]")]
    public void MetadataWithNonStringValue(string metadata) =>
        Fails(File($$$"""{"__metadata__":{{{metadata}}}}""", 0), "meta.safetensors", mentions: "__metadata__");

    [Fact]
    public void NullMetadata_IsAccepted_AsSerdeOptionNone()
    {
        string path = _folder.Write("nullmeta.safetensors", File("""{"__metadata__":null}""", 0));
        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.Metadata);
    }

    [Theory]
    [InlineData("dtype")]
    [InlineData("shape")]
    [InlineData("data_offsets")]
    public void MissingField(string field)
    {
        var parts = new Dictionary<string, string> { ["dtype"] = "\"U8\"", ["shape"] = "[2]", ["data_offsets"] = "[0,2]" };
        parts.Remove(field);
        string entry = string.Join(",", parts.Select(kv => $"\"{kv.Key}\":{kv.Value}"));
        Fails(File($$$"""{"w":{{{{entry}}}}}""", 2), "missing.safetensors", tensor: "w", mentions: field);
    }

    [Fact]
    public void UnknownFieldsInAnEntry_AreIgnored_AsTheReferenceDoes()
    {
        string path = _folder.Write("extra.safetensors", File("""{"w":{"dtype":"U8","extra":{"deep":[1,2,{"x":null}]},"shape":[2],"data_offsets":[0,2]}}""", 2));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(2, file.GetInfo("w").ElementCount);
    }

    [Theory]
    [InlineData("3")]
    [InlineData("\"F16\"")]
    [InlineData("[]")]
    [InlineData("null")]
    public void EntryNotAnObject(string value) =>
        Fails(File($$$"""{"w":{{{value}}}}""", 0), "entry.safetensors", tensor: "w", mentions: "object");

    [Fact]
    public void LoneSurrogateEscapeInAKey() =>
        Fails(File("""{"\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}""", 0), "surrogate.safetensors");

    [Fact]
    public void DeeplyNestedJson_IsRejectedNotOverflowingTheStack() =>
        Fails(File("{\"w\":{\"x\":" + new string('[', 100_000) + new string(']', 100_000) + "}}", 0), "deep.safetensors", mentions: "JSON");
}
