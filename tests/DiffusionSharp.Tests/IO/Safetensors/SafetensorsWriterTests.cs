using System.Runtime.InteropServices;
using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Tests.IO.Safetensors;

public class SafetensorsWriterTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static byte[] F32Bytes(params float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static byte[] WriteToBytes(IEnumerable<SafetensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, tensors, metadata);
        return stream.ToArray();
    }

    // The byte vectors published in huggingface/safetensors tensor.rs unit tests (test_serialization,
    // test_serialization_forced_alignement, test_empty).
    [Fact]
    public void MatchesReferenceVector_Serialization()
    {
        byte[] expected =
        [
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
            116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
            58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
            101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
            0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
        ];
        Assert.Equal(expected, WriteToBytes([new("attn.0", SafetensorsDType.F32, [1, 2, 3], F32Bytes(0, 1, 2, 3, 4, 5))]));
    }

    [Fact]
    public void MatchesReferenceVector_ForcedAlignment()
    {
        byte[] expected =
        [
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64,
        ];
        Assert.Equal(expected, WriteToBytes([new("attn0", SafetensorsDType.F32, [1, 1, 2, 3], F32Bytes(0, 1, 2, 3, 4, 5))]));
    }

    [Fact]
    public void MatchesReferenceVector_Empty()
    {
        Assert.Equal([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32], WriteToBytes([]));
        byte[] withMetadata =
        [
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32,
        ];
        Assert.Equal(withMetadata, WriteToBytes([], new Dictionary<string, string> { ["framework"] = "pt" }));
    }

    [Fact]
    public void MatchesIndependentPythonWriter_ByteForByte()
    {
        // writer_layout.safetensors was laid out by tools/make_io_fixtures.py (reference ordering, serde-style
        // JSON escapes, space padding). Feed the same tensors in a scrambled order and expect the same bytes.
        string path = IoTestFiles.Fixture("writer_layout.safetensors");
        byte[] expected = File.ReadAllBytes(path);
        List<SafetensorEntry> entries;
        Dictionary<string, string> metadata;
        using (var file = SafetensorsFile.Open(path))
        {
            entries = file.Tensors.Select(t => new SafetensorEntry(t.Name, t.DType, t.Shape, file.GetBytes(t).ToArray())).ToList();
            metadata = file.Metadata.ToDictionary();
        }
        Assert.Equal(8, entries.Count);
        entries.Reverse();
        (entries[1], entries[4]) = (entries[4], entries[1]);
        string written = _folder.File("layout.safetensors");
        SafetensorsWriter.Write(written, entries, metadata);
        Assert.Equal(expected, File.ReadAllBytes(written));
    }

    public static TheoryData<SafetensorsDType> AllDTypes() => new(Enum.GetValues<SafetensorsDType>());

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void RoundTrip_EveryDType_WithScalarAndZeroSizedTensors(SafetensorsDType dtype)
    {
        var random = new Random((int)dtype + 17);
        bool wholeBytes = dtype.BitSize() % 8 == 0; // F4 and F6 need element counts that fill whole bytes
        var shapes = new (string Name, long[] Shape)[]
        {
            ("matrix", [3, 4]),
            ("scalar", wholeBytes ? [] : [4]),
            ("empty", [4, 0, 2]),
            ("vector", [12]),
        };
        var entries = shapes.Select(s =>
        {
            long bytes = s.Shape.Aggregate(1L, (a, d) => a * d) * dtype.BitSize() / 8;
            var data = new byte[bytes];
            random.NextBytes(data);
            return new SafetensorEntry(s.Name, dtype, s.Shape, data);
        }).ToList();
        var metadata = new Dictionary<string, string> { ["dtype"] = dtype.ToHeaderString(), ["quote\"back\\slash"] = "line\nbreak ✓" };

        string path = _folder.File($"{dtype}.safetensors");
        SafetensorsWriter.Write(path, entries, metadata);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(entries.Count, file.Tensors.Count);
        foreach (var entry in entries)
        {
            var info = file.GetInfo(entry.Name);
            Assert.Equal(dtype, info.DType);
            Assert.Equal(entry.Shape, info.Shape);
            Assert.Equal(entry.Data.ToArray(), file.GetBytes(info).ToArray());
        }
        Assert.Equal(wholeBytes ? 1 : 4, file.GetInfo("scalar").ElementCount);
        Assert.Equal(0, file.GetInfo("empty").ByteLength);
        Assert.Equal(0, file.DataStart % 8);
    }

    [Fact]
    public void EveryTensorIsNaturallyAligned_InAWrittenMixedFile()
    {
        var dtypes = new[] { SafetensorsDType.U8, SafetensorsDType.F16, SafetensorsDType.F64, SafetensorsDType.I32, SafetensorsDType.BF16, SafetensorsDType.F32 };
        var entries = dtypes.Select((d, i) => new SafetensorEntry($"t{i}", d, [3 + i], new byte[(3 + i) * d.BitSize() / 8])).ToList();
        string path = _folder.File("aligned.safetensors");
        SafetensorsWriter.Write(path, entries);
        using var file = SafetensorsFile.Open(path);
        foreach (var t in file.Tensors)
            Assert.Equal(0, (file.DataStart + t.DataOffset) % (t.DType.BitSize() / 8));
        Assert.Equal([SafetensorsDType.F64, SafetensorsDType.F32, SafetensorsDType.I32, SafetensorsDType.BF16, SafetensorsDType.F16, SafetensorsDType.U8],
            file.Tensors.Select(t => t.DType));
    }

    [Fact]
    public void Float32Overload_RoundsToNearestEven_AsPyTorch()
    {
        // F32.round_input holds halfway cases, overflow, subnormals, NaN and infinities; F16.rounded and
        // BF16.rounded are PyTorch's .half() / .bfloat16() of it.
        float[] input;
        ushort[] halfExpected, bfloatExpected;
        using (var fixture = SafetensorsFile.Open(IoTestFiles.Fixture("dtypes.safetensors")))
        {
            input = fixture.ReadFloat32("F32.round_input");
            halfExpected = MemoryMarshal.Cast<byte, ushort>(fixture.GetBytes(fixture.GetInfo("F16.rounded"))).ToArray();
            bfloatExpected = MemoryMarshal.Cast<byte, ushort>(fixture.GetBytes(fixture.GetInfo("BF16.rounded"))).ToArray();
        }
        foreach (var (dtype, expected) in new[] { (SafetensorsDType.F16, halfExpected), (SafetensorsDType.BF16, bfloatExpected) })
        {
            string path = _folder.File($"rounded-{dtype}.safetensors");
            SafetensorsWriter.Write(path, [new Float32SafetensorEntry("x", [8, 8], input)], dtype);
            using var file = SafetensorsFile.Open(path);
            var info = file.GetInfo("x");
            Assert.Equal(dtype, info.DType);
            Assert.Equal([8L, 8L], info.Shape);
            var actual = MemoryMarshal.Cast<byte, ushort>(file.GetBytes(info)).ToArray();
            var decoded = file.ReadFloat32("x");
            for (int i = 0; i < expected.Length; i++)
            {
                // PyTorch's own NaN encodings disagree (scalar 0x7FC0, vectorised 0xFFFF): any NaN passes for a NaN.
                if (float.IsNaN(input[i])) Assert.True(float.IsNaN(decoded[i]), $"{dtype} of NaN decoded to {decoded[i]}");
                else Assert.True(expected[i] == actual[i], $"{dtype} of {input[i]:R}: expected 0x{expected[i]:X4}, got 0x{actual[i]:X4}");
            }
        }
    }

    [Fact]
    public void Float32Overload_ConvertsInBlocks_ForTensorsLargerThanOneBlock()
    {
        var values = Enumerable.Range(0, 20_001).Select(i => (float)Math.Sin(i) * 1000f).ToArray();
        string path = _folder.File("big.safetensors");
        SafetensorsWriter.Write(path, [new Float32SafetensorEntry("w", [values.Length], values), new Float32SafetensorEntry("s", [], new[] { 3f })], SafetensorsDType.F16);
        using var file = SafetensorsFile.Open(path);
        var back = file.ReadFloat32("w");
        for (int i = 0; i < values.Length; i++)
            Assert.Equal((float)(Half)values[i], back[i]);
        Assert.Equal([3f], file.ReadFloat32("s"));

        SafetensorsWriter.Write(path, [new Float32SafetensorEntry("w", [values.Length], values)], SafetensorsDType.F32);
        using var f32 = SafetensorsFile.Open(path);
        Assert.Equal(values, f32.ReadFloat32("w"));
    }

    [Fact]
    public void InvalidInput_ThrowsBeforeCreatingAnyFile()
    {
        string path = _folder.File("bad.safetensors");
        var ok = new SafetensorEntry("a", SafetensorsDType.F32, [2], new byte[8]);
        Assert.Contains("'a'", Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok, ok with { }])).Message);
        Assert.Contains("needs 8 bytes", Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok with { Data = new byte[7] }])).Message);
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok with { Shape = [-2] }])).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok with { Name = "__metadata__" }])).Message);
        Assert.Contains("whole number of bytes", Assert.Throws<ArgumentException>(() =>
            SafetensorsWriter.Write(path, [new SafetensorEntry("q", SafetensorsDType.F4, [3], new byte[2])])).Message);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok with { Shape = [long.MaxValue, 4] }]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok with { Name = "bad\ud800" }]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [ok], new Dictionary<string, string> { ["k"] = null! }));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new Float32SafetensorEntry("x", [2], new float[3])], SafetensorsDType.F16));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new Float32SafetensorEntry("x", [2], new float[2])], SafetensorsDType.I8));
        Assert.Empty(Directory.GetFileSystemEntries(_folder.Path));
    }

    [Fact]
    public void FailedWrite_LeavesNoPartialFile_AndKeepsTheOldOne()
    {
        string path = _folder.File("model.safetensors");
        File.WriteAllText(path, "old content");
        // A lazily enumerated input that fails half way: validation happens before the file is opened.
        IEnumerable<SafetensorEntry> Failing()
        {
            yield return new SafetensorEntry("a", SafetensorsDType.U8, [1], new byte[1]);
            throw new InvalidOperationException("source failed");
        }
        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, Failing()));
        Assert.Equal("old content", File.ReadAllText(path));

        // Renaming onto a folder fails after the data is written: the temporary file must be removed.
        string folderTarget = _folder.File("is-a-folder");
        Directory.CreateDirectory(folderTarget);
        Assert.ThrowsAny<IOException>(() => SafetensorsWriter.Write(folderTarget, [new SafetensorEntry("a", SafetensorsDType.U8, [1], new byte[1])]));
        Assert.Equal(["model.safetensors"], Directory.GetFiles(_folder.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Write_ReplacesAnExistingFile()
    {
        string path = _folder.File("model.safetensors");
        File.WriteAllText(path, "old content");
        SafetensorsWriter.Write(path, [new SafetensorEntry("a", SafetensorsDType.I8, [2], new byte[] { 0xFF, 7 })]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal([-1f, 7f], file.ReadFloat32("a"));
        Assert.Single(Directory.GetFiles(_folder.Path));
    }
}
