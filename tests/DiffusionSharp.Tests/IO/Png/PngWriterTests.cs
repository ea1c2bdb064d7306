using System.Text;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.IO.Png;

public class PngWriterTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static RgbImage Noise(int width, int height, int seed)
    {
        var image = new RgbImage(width, height);
        new Random(seed).NextBytes(image.Pixels);
        return image;
    }

    private static byte[] Encode(RgbImage image, IEnumerable<KeyValuePair<string, string>>? text = null)
    {
        using var stream = new MemoryStream();
        PngWriter.Write(stream, image, text);
        return stream.ToArray();
    }

    private const string Parameters =
        "a watercolor of a lighthouse at dusk\nNegative prompt: blurry, text\n" +
        "Steps: 8, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 64x48, Model: mobile-v1, RNG: CPU";

    [Fact]
    public void RoundTrip_PixelsAndText_AreIdentical()
    {
        var image = Noise(37, 23, 1);
        var text = new Dictionary<string, string>
        {
            ["parameters"] = Parameters,
            ["prompt (ja)"] = "灯台の水彩画 — ✓",
            ["Latin-1 only"] = "café, naïve, ÿ",
            ["empty"] = "",
        };
        string path = _folder.File("out.png");
        PngWriter.Write(path, image, text);
        var back = PngReader.Read(path);
        Assert.Equal((37, 23, 3), (back.Width, back.Height, back.Channels));
        Assert.Equal(image.Pixels, back.Pixels);
        Assert.Equal(text, back.Text);
    }

    [Fact]
    public void ChunkLayout_IsSignatureIhdrTextIdatIend_WithWebUiParameters()
    {
        byte[] png = Encode(Noise(5, 4, 2), [new("parameters", Parameters), new("prompt", "猫 on a mat")]);
        Assert.Equal(PngTestBytes.Signature, png[..8]);
        var chunks = PngTestBytes.Chunks(png);
        Assert.Equal(["IHDR", "tEXt", "iTXt", "IDAT", "IEND"], chunks.Select(c => c.Type));
        Assert.Equal(PngTestBytes.Ihdr(5, 4, 8, 2), chunks[0].Data);
        // tEXt: keyword NUL Latin-1 text; iTXt: keyword NUL, flag 0, method 0, empty language, empty translation, UTF-8.
        Assert.Equal([.. "parameters\0"u8.ToArray(), .. Encoding.Latin1.GetBytes(Parameters)], chunks[1].Data);
        Assert.Equal([.. "prompt\0\0\0\0\0"u8.ToArray(), .. Encoding.UTF8.GetBytes("猫 on a mat")], chunks[2].Data);
    }

    [Fact]
    public void EndsWithTheKnownIendChunk()
    {
        byte[] png = Encode(Noise(3, 3, 3));
        Assert.Equal([0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82], png[^12..]);
    }

    [Fact]
    public void EqualInput_GivesEqualBytes()
    {
        var text = new[] { new KeyValuePair<string, string>("parameters", Parameters) };
        Assert.Equal(Encode(Noise(64, 48, 4), text), Encode(Noise(64, 48, 4), text));
    }

    [Fact]
    public void LargeImage_IsSplitIntoIdatChunksOfAtMost64KiB_AndRoundTrips()
    {
        var image = Noise(300, 280, 5); // incompressible: ~250 KB of IDAT
        byte[] png = Encode(image);
        var idat = PngTestBytes.Chunks(png).Where(c => c.Type == "IDAT").ToList();
        Assert.True(idat.Count >= 4, $"{idat.Count} IDAT chunks");
        Assert.All(idat.SkipLast(1), c => Assert.Equal(PngWriter.IdatChunkSize, c.Data.Length));
        Assert.Equal(image.Pixels, PngReader.Read(new MemoryStream(png)).Pixels);
    }

    [Fact]
    public void RowFilters_AreChosenByMinimumSumOfAbsoluteValues()
    {
        // Identical horizontal ramps: row 0 is best as Sub (constant steps; Paeth ties with it and loses to the
        // lower type), every later row as Up (all zeros).
        var image = new RgbImage(40, 6);
        for (int y = 0; y < 6; y++)
        for (int x = 0; x < 40; x++)
        for (int c = 0; c < 3; c++)
            image.Pixels[(y * 40 + x) * 3 + c] = (byte)(5 * x + 50 * c);
        byte[] raw = PngTestBytes.RawImageData(Encode(image));
        Assert.Equal(6 * (1 + 120), raw.Length);
        Assert.Equal([1, 2, 2, 2, 2, 2], Enumerable.Range(0, 6).Select(y => (int)raw[y * 121]));

        // Vertical ramps with noise-free columns: Sub wins nowhere, Up everywhere after row 0.
        var noise = Noise(16, 8, 6);
        byte[] noiseRaw = PngTestBytes.RawImageData(Encode(noise));
        Assert.All(Enumerable.Range(0, 8), y => Assert.InRange(noiseRaw[y * 49], 0, 4));
    }

    [Fact]
    public void InvalidTextChunks_ThrowBeforeAnyFileIsCreated()
    {
        string path = _folder.File("bad.png");
        var image = Noise(2, 2, 7);
        foreach (var bad in new KeyValuePair<string, string>[]
                 {
                     new("", "x"), new(new string('k', 80), "x"), new(" lead", "x"), new("trail ", "x"), new("two  spaces", "x"),
                     new("tab\tkey", "x"), new("ключ", "x"), new("nul", "a\0b"), new("surrogate", "\ud800"),
                 })
            Assert.Throws<ArgumentException>(() => PngWriter.Write(path, image, [bad]));
        Assert.Throws<ArgumentException>(() => PngWriter.Write(path, image, [new("k", "a"), new("k", "b")]));
        Assert.Empty(Directory.GetFileSystemEntries(_folder.Path));
        // Keywords of 79 Latin-1 characters are fine.
        PngWriter.Write(path, image, [new(new string('é', 79), "x")]);
        Assert.Equal("x", PngReader.Read(path).Text[new string('é', 79)]);
    }

    [Fact]
    public void FailedRename_LeavesNoPartialFile()
    {
        string target = _folder.File("taken");
        Directory.CreateDirectory(target);
        Assert.ThrowsAny<IOException>(() => PngWriter.Write(target, Noise(4, 4, 8)));
        Assert.Empty(Directory.GetFiles(_folder.Path));
    }

    [Fact]
    public void Write_ReplacesAnExistingFile()
    {
        string path = _folder.File("image.png");
        File.WriteAllText(path, "old");
        var image = Noise(6, 5, 9);
        PngWriter.Write(path, image);
        Assert.Equal(image.Pixels, PngReader.Read(path).Pixels);
        Assert.Single(Directory.GetFiles(_folder.Path));
    }

    [Fact]
    public void RgbImage_ValidatesSizes()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RgbImage(0, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RgbImage(5, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RgbImage(int.MaxValue, int.MaxValue));
        Assert.Throws<ArgumentException>(() => new RgbImage(2, 2, new byte[11]));
        Assert.Equal(12, new RgbImage(2, 2).Pixels.Length);
    }
}
