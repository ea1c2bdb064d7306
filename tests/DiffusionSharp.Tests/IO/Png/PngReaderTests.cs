using System.Text;
using DiffusionSharp.IO;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.IO.Png;

public class PngReaderTests
{
    // Fixtures from tools/make_io_fixtures.py: PNGs encoded by PIL and by a hand-built encoder (all five
    // filters, split IDAT, unknown ancillary chunk); .pixels are the bytes PIL decodes (palette -> RGBA).
    [Theory]
    [InlineData("pil_rgb", 23, 11, 3)]
    [InlineData("pil_rgba", 19, 13, 4)]
    [InlineData("pil_l", 19, 13, 1)]
    [InlineData("pil_la", 19, 13, 2)]
    [InlineData("pil_palette", 21, 9, 4)]
    [InlineData("handmade_rgb_filters", 17, 10, 3)]
    [InlineData("handmade_rgba_filters", 9, 10, 4)]
    [InlineData("handmade_la_filters", 11, 10, 2)]
    public void DecodesOtherEncoders_AsPilDoes(string name, int width, int height, int channels)
    {
        var image = PngReader.Read(IoTestFiles.Fixture(name + ".png"));
        Assert.Equal((width, height, channels, 8), (image.Width, image.Height, image.Channels, image.BitDepth));
        Assert.Equal(File.ReadAllBytes(IoTestFiles.Fixture(name + ".pixels")), image.Pixels);
    }

    [Theory]
    [InlineData("pil_rgb")]
    [InlineData("handmade_rgb_filters")]
    public void ReadsTextChunks_AsPilDoes(string name)
    {
        // .text: keyword NUL value NUL records, as PIL's Image.text returns them (tEXt, zTXt, iTXt).
        var records = Encoding.UTF8.GetString(File.ReadAllBytes(IoTestFiles.Fixture(name + ".text"))).Split('\0');
        var expected = new Dictionary<string, string>();
        for (int i = 0; i + 1 < records.Length; i += 2) expected[records[i]] = records[i + 1];
        var image = PngReader.Read(IoTestFiles.Fixture(name + ".png"));
        Assert.Equal(expected, image.Text);
        Assert.StartsWith("a photo of a red fox in the snow, (highly detailed:1.2)\nNegative prompt: blurry, lowres\nSteps: 20,", image.Text["parameters"]);
        Assert.EndsWith("Model: café-v1", image.Text["parameters"]);
    }

    [Fact]
    public void PilTextKinds_AreAllPresent()
    {
        var text = PngReader.Read(IoTestFiles.Fixture("pil_rgb.png")).Text;
        Assert.Equal("雪の中の赤い狐 — ü", text["prompt_ja"]);        // compressed iTXt
        Assert.Equal("a–b “quoted”", text["plain_utf8"]);          // uncompressed iTXt
        Assert.StartsWith("compressed Latin-1 text: déjà vu", text["zipped"]); // zTXt
    }

    private static PngFormatException Fails(byte[] png, string? mentions = null)
    {
        var e = Assert.Throws<PngFormatException>(() => PngReader.Read(new MemoryStream(png), "test.png"));
        Assert.StartsWith("test.png: ", e.Message);
        Assert.Equal("test.png", e.FilePath);
        if (mentions is not null) Assert.Contains(mentions, e.Message);
        return e;
    }

    private static readonly byte[] RgbIhdr = PngTestBytes.Ihdr(2, 2, 8, 2);
    private static readonly byte[] RgbRaw = [0, 1, 2, 3, 4, 5, 6, 1, 7, 8, 9, 1, 1, 1];

    [Fact]
    public void MinimalBaseline_Decodes()
    {
        var image = PngReader.Read(new MemoryStream(PngTestBytes.Minimal(RgbIhdr, RgbRaw)));
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 9, 10], image.Pixels); // second row: Sub filter
    }

    [Fact]
    public void FilePath_NamesTheFile()
    {
        using var folder = new TempFolder();
        string path = folder.Write("broken.png", [1, 2, 3]);
        var e = Assert.Throws<PngFormatException>(() => PngReader.Read(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.IsAssignableFrom<FileFormatException>(e);
    }

    [Fact]
    public void NotAPng() => Fails("GIF89a and more bytes"u8.ToArray(), "signature");

    [Fact]
    public void EveryTruncation_IsAFormatError()
    {
        byte[] png = File.ReadAllBytes(IoTestFiles.Fixture("handmade_rgb_filters.png"));
        for (int length = 0; length < png.Length; length++)
            Fails(png[..length]);
    }

    [Fact]
    public void CrcMismatch()
    {
        byte[] png = PngTestBytes.Minimal(RgbIhdr, RgbRaw);
        png[^1] ^= 1; // IEND's CRC
        Fails(png, "CRC mismatch in the IEND chunk");
        png = PngTestBytes.Minimal(RgbIhdr, RgbRaw);
        png[8 + 8 + 3] ^= 0x40; // a byte of the IHDR data
        Fails(png, "CRC mismatch in the IHDR chunk");
    }

    [Fact]
    public void Interlaced_IsRefusedClearly() =>
        Fails(PngTestBytes.Minimal(PngTestBytes.Ihdr(2, 2, 8, 2, interlace: 1), RgbRaw), "interlaced");

    [Theory]
    [InlineData(16, 2)]
    [InlineData(16, 6)]
    [InlineData(4, 3)]
    [InlineData(1, 0)]
    public void OtherBitDepths_AreRefusedClearly(byte depth, byte colorType) =>
        Fails(PngTestBytes.Minimal(PngTestBytes.Ihdr(2, 2, depth, colorType), RgbRaw), "8-bit PNGs only");

    [Theory]
    [InlineData(3, 2)]
    [InlineData(8, 1)]
    [InlineData(8, 7)]
    [InlineData(2, 6)]
    public void InvalidDepthOrColourType(byte depth, byte colorType) =>
        Fails(PngTestBytes.Minimal(PngTestBytes.Ihdr(2, 2, depth, colorType), RgbRaw), "invalid");

    [Theory]
    [InlineData(0, 5)]
    [InlineData(5, 0)]
    [InlineData(-1, 5)]
    public void InvalidSize(int width, int height) =>
        Fails(PngTestBytes.Minimal(PngTestBytes.Ihdr(width, height, 8, 2), RgbRaw), "invalid image size");

    [Fact]
    public void HugeDimensions_AreRejectedBeforeAllocating()
    {
        byte[] png = PngTestBytes.Minimal(PngTestBytes.Ihdr(16385, 16384, 8, 6), RgbRaw);
        Fails(png, "at most 16384");
        // At the cap, a tiny file claiming 16384 x 16384 RGBA (1 GiB) must not make the reader allocate it.
        png = PngTestBytes.Minimal(PngTestBytes.Ihdr(16384, 16384, 8, 6), RgbRaw);
        Fails(png);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Fails(png, "truncated");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 8 << 20, $"a 60-byte PNG made the reader allocate {allocated} bytes");
    }

    [Fact]
    public void ChunkClaimingTwoGigabytes_InATinyFile_FailsWithoutAllocatingIt()
    {
        var png = new List<byte>(PngTestBytes.Build([("IHDR", RgbIhdr)]));
        png.AddRange([0x7F, 0xFF, 0xFF, 0xFF, (byte)'t', (byte)'E', (byte)'X', (byte)'t', (byte)'k', 0, (byte)'v']);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Fails(png.ToArray(), "truncated");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        png[33] = 0x80; // 2^31 and more: over PNG's own limit
        Fails(png.ToArray(), "at most 2^31 - 1");
    }

    [Fact]
    public void InvalidFilterType() =>
        Fails(PngTestBytes.Minimal(RgbIhdr, [0, 1, 2, 3, 4, 5, 6, 5, 7, 8, 9, 1, 1, 1]), "row 1 has filter type 5");

    [Fact]
    public void ImageDataTooShort() =>
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw[..10]), "ends in row 1");

    [Fact]
    public void ImageDataNotZlib() =>
        Fails(PngTestBytes.Build([("IHDR", RgbIhdr), ("IDAT", [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]), ("IEND", [])]), "zlib");

    [Fact]
    public void ZlibChecksumMismatch_IsDetected()
    {
        byte[] idat = PngTestBytes.Deflate(RgbRaw);
        idat[^1] ^= 0xFF; // Adler-32
        Fails(PngTestBytes.Build([("IHDR", RgbIhdr), ("IDAT", idat), ("IEND", [])]), "zlib");
    }

    [Fact]
    public void SmallSurplusOfImageData_IsTolerated_AsLibpngDoes()
    {
        var image = PngReader.Read(new MemoryStream(PngTestBytes.Minimal(RgbIhdr, [.. RgbRaw, 0, 0, 0])));
        Assert.Equal(12, image.Pixels.Length);
    }

    [Fact]
    public void HugeSurplusOfImageData_IsRejected() =>
        Fails(PngTestBytes.Minimal(RgbIhdr, [.. RgbRaw, .. new byte[2 << 20]]), "beyond");

    [Fact]
    public void UnknownCriticalChunk() =>
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("XXXX", [1, 2])), "unknown critical chunk 'XXXX'");

    [Fact]
    public void InvalidChunkType() =>
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("a1b2", [1, 2])), "four ASCII letters");

    [Fact]
    public void MissingIend() =>
        Fails(PngTestBytes.Build([("IHDR", RgbIhdr), ("IDAT", PngTestBytes.Deflate(RgbRaw))]), "no IEND");

    [Fact]
    public void IendWithData() =>
        Fails(PngTestBytes.Build([("IHDR", RgbIhdr), ("IDAT", PngTestBytes.Deflate(RgbRaw)), ("IEND", [0])]), "must be empty");

    [Fact]
    public void NoImageData() => Fails(PngTestBytes.Build([("IHDR", RgbIhdr), ("IEND", [])]), "no IDAT");

    [Fact]
    public void FirstChunkNotIhdr() =>
        Fails(PngTestBytes.Build([("tEXt", "a\0b"u8.ToArray()), ("IHDR", RgbIhdr), ("IDAT", PngTestBytes.Deflate(RgbRaw)), ("IEND", [])]), "not IHDR");

    [Fact]
    public void IhdrOfWrongLength() => Fails(PngTestBytes.Minimal(RgbIhdr[..12], RgbRaw), "13");

    [Fact]
    public void IdatChunksNotConsecutive()
    {
        byte[] z = PngTestBytes.Deflate(RgbRaw);
        Fails(PngTestBytes.Build([("IHDR", RgbIhdr), ("IDAT", z[..4]), ("tEXt", "k\0v"u8.ToArray()), ("IDAT", z[4..]), ("IEND", [])]));
    }

    [Fact]
    public void PaletteImages_ChecksPaletteAndIndices()
    {
        byte[] ihdr = PngTestBytes.Ihdr(2, 1, 8, 3);
        byte[] plte = [10, 20, 30, 40, 50, 60];
        var image = PngReader.Read(new MemoryStream(PngTestBytes.Minimal(ihdr, [0, 1, 0], ("PLTE", plte))));
        Assert.Equal(3, image.Channels);
        Assert.Equal([40, 50, 60, 10, 20, 30], image.Pixels);

        Fails(PngTestBytes.Minimal(ihdr, [0, 1, 2], ("PLTE", plte)), "palette index 2");
        Fails(PngTestBytes.Minimal(ihdr, [0, 1, 0]), "without a PLTE");
        Fails(PngTestBytes.Minimal(ihdr, [0, 1, 0], ("PLTE", plte[..5])), "PLTE");
        Fails(PngTestBytes.Minimal(ihdr, [0, 1, 0], ("PLTE", plte), ("PLTE", plte)), "second PLTE");
        Fails(PngTestBytes.Minimal(ihdr, [0, 1, 0], ("PLTE", plte), ("tRNS", [1, 2, 3])), "tRNS");
        Fails(PngTestBytes.Minimal(PngTestBytes.Ihdr(2, 1, 8, 0), [0, 1, 0], ("PLTE", plte)), "greyscale");
        Fails(PngTestBytes.Build([("IHDR", ihdr), ("PLTE", plte), ("IDAT", PngTestBytes.Deflate([0, 1, 0])), ("PLTE", plte), ("IEND", [])]), "after the image data");
    }

    [Fact]
    public void MalformedTextChunks()
    {
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("tEXt", "no separator"u8.ToArray())), "keyword");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("tEXt", "\0empty keyword"u8.ToArray())), "keyword");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("tEXt", [.. new byte[80].Select(_ => (byte)'k'), 0, (byte)'v'])), "keyword");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("zTXt", "k\0\u0001xx"u8.ToArray())), "compression method");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("zTXt", "k\0\0not zlib"u8.ToArray())), "zlib");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("iTXt", [(byte)'k', 0, 0, 0, 0, 0, 0xC3, 0x28])), "UTF-8");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("iTXt", [(byte)'k', 0, 0, 0, (byte)'e', (byte)'n'])), "language tag");
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("iTXt", [(byte)'k', 0, 2, 0, 0, 0])), "compression flag");
    }

    [Fact]
    public void CompressedTextBomb_IsCapped()
    {
        byte[] bomb = PngTestBytes.Deflate(new byte[PngReader.MaxTextLength + 1]);
        Fails(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("zTXt", [(byte)'k', 0, 0, .. bomb])), "inflates to more than");
    }

    [Fact]
    public void RepeatedKeyword_KeepsTheLastValue()
    {
        var image = PngReader.Read(new MemoryStream(PngTestBytes.Minimal(RgbIhdr, RgbRaw,
            ("tEXt", "k\0first"u8.ToArray()), ("tEXt", "k\0second"u8.ToArray()))));
        Assert.Equal("second", image.Text["k"]);
    }

    [Fact]
    public void TransparencyForGreyAndRgb_IsIgnored_AndPaletteAlphaDefaultsToOpaque()
    {
        var rgb = PngReader.Read(new MemoryStream(PngTestBytes.Minimal(RgbIhdr, RgbRaw, ("tRNS", [0, 1, 0, 2, 0, 3]))));
        Assert.Equal(3, rgb.Channels);
        var palette = PngReader.Read(new MemoryStream(PngTestBytes.Minimal(PngTestBytes.Ihdr(3, 1, 8, 3), [0, 0, 1, 2],
            ("PLTE", [1, 1, 1, 2, 2, 2, 3, 3, 3]), ("tRNS", [7]))));
        Assert.Equal([1, 1, 1, 7, 2, 2, 2, 255, 3, 3, 3, 255], palette.Pixels);
    }

    [Fact]
    public void BytesAfterIend_AreNotRead()
    {
        byte[] png = [.. PngTestBytes.Minimal(RgbIhdr, RgbRaw), .. "trailing junk"u8.ToArray()];
        var stream = new MemoryStream(png);
        PngReader.Read(stream);
        Assert.Equal(png.Length - 13, stream.Position);
    }
}
