using System.Runtime.InteropServices;
using DiffusionSharp.IO;
using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Tests.IO.Safetensors;

public class SafetensorsFileTests
{
    private static readonly string[] ConvertibleDTypes =
        ["F16", "BF16", "F64", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64",
         "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0"];

    public static TheoryData<string> DTypeNames() => new(ConvertibleDTypes);

    [Theory]
    [MemberData(nameof(DTypeNames))]
    public void ReadFloat32_MatchesPyTorchConversion_Bitwise(string dtype)
    {
        // dtypes.safetensors: "<D>.values" in dtype D and "<D>.expected" as F32, converted by PyTorch/NumPy
        // (FP8: decoded from the format definitions); NaNs included, so compare bit patterns.
        using var file = SafetensorsFile.Open(IoTestFiles.Fixture("dtypes.safetensors"));
        var values = file.GetInfo($"{dtype}.values");
        Assert.Equal(dtype, values.DType.ToHeaderString());
        float[] actual = file.ReadFloat32(values.Name);
        float[] expected = file.ReadFloat32($"{dtype}.expected");
        Assert.Equal(values.ElementCount, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i])
                        || (float.IsNaN(expected[i]) && float.IsNaN(actual[i])),
                $"{dtype}[{i}]: expected {expected[i]:R} (0x{BitConverter.SingleToUInt32Bits(expected[i]):X8}), got {actual[i]:R} (0x{BitConverter.SingleToUInt32Bits(actual[i]):X8})");
    }

    [Fact]
    public void Open_ReadsHeaderEntriesMetadataAndOrder()
    {
        string path = IoTestFiles.Fixture("dtypes.safetensors");
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(path, file.Path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("naïve ✓ 猫", file.Metadata["unicode"]);
        Assert.Equal(3, file.Metadata.Count);

        var f16 = file.GetInfo("F16.values");
        Assert.Equal(SafetensorsDType.F16, f16.DType);
        Assert.Equal([7L, 9L], f16.Shape);
        Assert.Equal(63, f16.ElementCount);
        Assert.Equal(126, f16.ByteLength);

        // Tensors are listed by data offset, contiguous from 0 to the end of the file.
        long cursor = 0;
        foreach (var t in file.Tensors)
        {
            Assert.Equal(cursor, t.DataOffset);
            cursor += t.ByteLength;
        }
        Assert.Equal(new FileInfo(path).Length, file.DataStart + cursor);
        // The reference layout puts the 8-byte types first (U64 sorts last in the enum, so first here).
        Assert.Equal(SafetensorsDType.U64, file.Tensors[0].DType);
        Assert.Equal(0, file.DataStart % 8);
    }

    [Fact]
    public void GetBytes_IsAZeroCopyViewOfTheFile()
    {
        string path = IoTestFiles.Fixture("dtypes.safetensors");
        byte[] raw = File.ReadAllBytes(path);
        using var file = SafetensorsFile.Open(path);
        foreach (var t in file.Tensors)
        {
            var bytes = file.GetBytes(t);
            Assert.True(raw.AsSpan((int)(file.DataStart + t.DataOffset), (int)t.ByteLength).SequenceEqual(bytes), t.Name);
            unsafe
            {
                fixed (byte* p = bytes)
                    Assert.True(p == file.GetPointer(t), t.Name);
            }
        }
    }

    [Fact]
    public void MisalignedTensors_FromOtherWriters_ConvertCorrectly()
    {
        // Header length 597 (odd), whitespace before '{', tensors at odd offsets, keys not in data order.
        using var file = SafetensorsFile.Open(IoTestFiles.Fixture("misaligned.safetensors"));
        Assert.NotEqual(0, file.DataStart % 4);
        Assert.Equal(["pad.u8", "w.f32", "w.f16", "w.bf16", "w.f64"], file.Tensors.Take(5).Select(t => t.Name));
        foreach (string name in new[] { "w.f32", "w.f16", "w.bf16", "w.f64" })
        {
            var info = file.GetInfo(name);
            Assert.True((file.DataStart + info.DataOffset) % 2 == 1, $"{name} should start at an odd file offset");
            var expected = file.ReadFloat32(name + ".expected");
            var actual = new float[info.ElementCount];
            file.ReadFloat32(name, actual);
            Assert.Equal(expected, actual);
        }
        Assert.Equal([1f, 2f], file.ReadFloat32("pad.u8"));
    }

    [Fact]
    public void GetInfo_MissingTensor_ThrowsKeyNotFoundNamingFileAndTensor()
    {
        string path = IoTestFiles.Fixture("dtypes.safetensors");
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<KeyNotFoundException>(() => file.GetInfo("model.no_such.weight"));
        Assert.Contains(path, e.Message);
        Assert.Contains("model.no_such.weight", e.Message);
        Assert.False(file.Contains("model.no_such.weight"));
        Assert.False(file.TryGetInfo("model.no_such.weight", out _));
        Assert.True(file.Contains("F16.values"));
        Assert.True(file.TryGetInfo("F16.values", out var info));
        Assert.Equal("F16.values", info.Name);
    }

    [Fact]
    public void ReadFloat32_WrongDestinationLength_ThrowsNamingFileAndTensor()
    {
        string path = IoTestFiles.Fixture("dtypes.safetensors");
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<ArgumentException>(() => file.ReadFloat32("F16.values", new float[62]));
        Assert.Contains(path, e.Message);
        Assert.Contains("'F16.values'", e.Message);
        Assert.Contains("63", e.Message);
    }

    [Theory]
    [InlineData(SafetensorsDType.Bool, 3)]
    [InlineData(SafetensorsDType.C64, 2)]
    [InlineData(SafetensorsDType.F4, 4)]
    public void ReadFloat32_UnconvertibleDType_ThrowsNamingFileAndTensor(SafetensorsDType dtype, int count)
    {
        using var folder = new TempFolder();
        string path = folder.File("flags.safetensors");
        int bytes = count * dtype.BitSize() / 8;
        SafetensorsWriter.Write(path, [new SafetensorEntry("mask", dtype, [count], new byte[bytes])]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(bytes, file.GetBytes(file.GetInfo("mask")).Length);
        var e = Assert.Throws<NotSupportedException>(() => file.ReadFloat32("mask"));
        Assert.Contains(path, e.Message);
        Assert.Contains("'mask'", e.Message);
        Assert.Contains(dtype.ToHeaderString(), e.Message);
        Assert.False(dtype.CanConvertToFloat32());
    }

    [Fact]
    public void InfoFromAnotherFile_IsRefused()
    {
        using var a = SafetensorsFile.Open(IoTestFiles.Fixture("dtypes.safetensors"));
        using var b = SafetensorsFile.Open(IoTestFiles.Fixture("misaligned.safetensors"));
        var foreign = b.GetInfo("w.f64");
        Assert.Throws<ArgumentException>(() => a.GetBytes(foreign));
        Assert.Throws<ArgumentException>(() => a.GetBytes(foreign with { Name = "F16.values" }));
    }

    [Fact]
    public void Dispose_ThenAccess_ThrowsObjectDisposed()
    {
        var file = SafetensorsFile.Open(IoTestFiles.Fixture("dtypes.safetensors"));
        var info = file.GetInfo("F32.round_input");
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.GetBytes(info));
        Assert.Throws<ObjectDisposedException>(() => file.ReadFloat32("F32.round_input"));
    }

    [Fact]
    public void OpenedFile_CanBeOpenedTwiceAndIsNotLocked()
    {
        string path = IoTestFiles.Fixture("dtypes.safetensors");
        using var a = SafetensorsFile.Open(path);
        using var b = SafetensorsFile.Open(path);
        Assert.Equal(a.ReadFloat32("F16.values"), b.ReadFloat32("F16.values"));
    }

    [Fact]
    public void MissingFile_ThrowsFileNotFound()
    {
        using var folder = new TempFolder();
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(folder.File("absent.safetensors")));
    }

    [Fact]
    public void ZipPickleCheckpoint_IsRecognisedAndNeverParsed()
    {
        using var folder = new TempFolder();
        // The start of a torch.save zip archive: local file header "PK\3\4", version 20, flags, ...
        byte[] zip = [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x08, 0x08, 0x00, 0x00, .. "archive/data.pkl"u8, 0x80, 0x02];
        string path = folder.Write("model.ckpt", zip);
        Assert.True(SafetensorsFile.LooksLikePickle(path));
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("pickle", e.Message);
        Assert.Contains("never unpickles", e.Message);
        Assert.Contains("safetensors", e.Message);
        Assert.IsAssignableFrom<FileFormatException>(e);
    }

    [Fact]
    public void RawPickleCheckpoint_IsRecognised()
    {
        using var folder = new TempFolder();
        // Legacy torch.save: pickle protocol 2 (0x80 0x02), then LONG1 magic number 0x1950a86a20f9469cfc6c.
        byte[] pickle = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E];
        string path = folder.Write("model.pt", pickle);
        Assert.True(SafetensorsFile.LooksLikePickle(path));
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("pickle", e.Message);
    }

    [Fact]
    public void SafetensorsWhoseLengthBytesLookLikePickleMagic_IsNotTakenForAPickle()
    {
        // A header of 640 bytes starts the file with 80 02 00 00 ...: the pickle sniffer must not fire.
        using var folder = new TempFolder();
        string path = folder.File("odd.safetensors");
        string name = new('x', 640 - "{\"\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}".Length);
        SafetensorsWriter.Write(path, [new SafetensorEntry(name, SafetensorsDType.U8, [0], Array.Empty<byte>())]);
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal([0x80, 0x02, 0, 0, 0, 0, 0, 0], bytes[..8]);
        Assert.False(SafetensorsFile.LooksLikePickle(path));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(name, Assert.Single(file.Tensors).Name);
    }

    [Fact]
    public void EmptyFileWithOnlyAHeader_Opens()
    {
        using var folder = new TempFolder();
        string path = folder.Write("empty.safetensors", [8, 0, 0, 0, 0, 0, 0, 0, .. "{}      "u8]);
        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void ToFloat32_RejectsLengthMismatchInternally()
    {
        Assert.Throws<ArgumentException>(() => DTypeConversion.ToFloat32(SafetensorsDType.F16, new byte[6], new float[4]));
        float[] one = new float[1];
        DTypeConversion.ToFloat32(SafetensorsDType.F32, MemoryMarshal.AsBytes(new float[] { 2.5f }.AsSpan()), one);
        Assert.Equal(2.5f, one[0]);
    }
}
