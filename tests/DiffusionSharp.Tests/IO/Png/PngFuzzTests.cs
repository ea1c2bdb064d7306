using System.Buffers.Binary;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.IO.Png;

/// <summary>
/// Seeded mutation fuzzing of <see cref="PngReader"/>. Most mutations re-seal the chunk CRCs (and some re-compress
/// the image data) so that they reach the decoder instead of stopping at the first CRC check. Every mutated file
/// must decode to a consistent image or fail with <see cref="PngFormatException"/>.
/// Set DIFFUSIONSHARP_FUZZ_ITERATIONS for a longer run.
/// </summary>
public class PngFuzzTests
{
    private static byte[][] Seeds()
    {
        var image = new RgbImage(13, 7);
        for (int i = 0; i < image.Pixels.Length; i++) image.Pixels[i] = (byte)(i * 7 % 251);
        using var stream = new MemoryStream();
        PngWriter.Write(stream, image, [new("parameters", "prompt\nSteps: 4"), new("prompt", "狐")]);
        return
        [
            stream.ToArray(),
            File.ReadAllBytes(IoTestFiles.Fixture("pil_palette.png")),
            File.ReadAllBytes(IoTestFiles.Fixture("handmade_rgb_filters.png")),
            File.ReadAllBytes(IoTestFiles.Fixture("handmade_la_filters.png")),
            File.ReadAllBytes(IoTestFiles.Fixture("pil_rgb.png")),
        ];
    }

    [Fact]
    public void MutatedFiles_DecodeConsistentlyOrThrowFormatException()
    {
        int iterations = IoTestFiles.FuzzIterations(3000);
        var seeds = Seeds();
        int decoded = 0, rejected = 0;
        for (int iteration = 0; iteration < iterations; iteration++)
        {
            var random = new Random(iteration);
            byte[] png = seeds[random.Next(seeds.Length)];
            string applied = "";
            for (int m = random.Next(1, 3); m > 0; m--)
            {
                var (mutated, name) = Mutate(png, random);
                png = mutated;
                applied += name + " ";
            }
            try
            {
                var image = PngReader.Read(new MemoryStream(png), "fuzz.png");
                Assert.InRange(image.Width, 1, PngReader.MaxDimension);
                Assert.InRange(image.Height, 1, PngReader.MaxDimension);
                Assert.InRange(image.Channels, 1, 4);
                Assert.Equal((long)image.Width * image.Height * image.Channels, image.Pixels.Length);
                decoded++;
            }
            catch (PngFormatException e)
            {
                Assert.StartsWith("fuzz.png: ", e.Message);
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iteration} (mutations: {applied}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Assert.True(decoded > iterations / 20, $"only {decoded} of {iterations} mutated PNGs decoded");
        Assert.True(rejected > iterations / 4, $"only {rejected} of {iterations} mutated PNGs were rejected");
    }

    private static (byte[], string) Mutate(byte[] png, Random random)
    {
        var chunks = PngTestBytes.Chunks(png);
        switch (chunks.Count == 0 ? random.Next(2) : random.Next(8))
        {
            case 0:
            {
                if (png.Length == 0) return (png, "noop");
                var copy = (byte[])png.Clone();
                copy[random.Next(copy.Length)] = (byte)random.Next(256);
                return (copy, "flip");
            }
            case 1:
            {
                int keep = random.Next(png.Length);
                return (png[..keep], $"truncate@{keep}");
            }
            case 2:
            {
                // Flip bytes inside one chunk's data and re-seal every CRC.
                int c = random.Next(chunks.Count);
                if (chunks[c].Data.Length == 0) return (png, "noop");
                var data = (byte[])chunks[c].Data.Clone();
                for (int k = random.Next(1, 4); k > 0; k--) data[random.Next(data.Length)] = (byte)random.Next(256);
                chunks[c] = (chunks[c].Type, data);
                return (PngTestBytes.Build(chunks), $"data({chunks[c].Type})");
            }
            case 3:
            {
                // Rewrite IHDR fields, sealed.
                var ihdr = (byte[])chunks[0].Data.Clone();
                if (ihdr.Length != 13) return (png, "noop");
                switch (random.Next(4))
                {
                    case 0: BinaryPrimitives.WriteInt32BigEndian(ihdr, random.Next(5) == 0 ? random.Next() : random.Next(0, 40)); break;
                    case 1: BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), random.Next(5) == 0 ? random.Next() : random.Next(0, 40)); break;
                    case 2: ihdr[8] = (byte)(random.Next(3) == 0 ? random.Next(256) : 8); ihdr[9] = (byte)random.Next(8); break;
                    default: ihdr[8 + random.Next(5)] = (byte)random.Next(3); break;
                }
                chunks[0] = ("IHDR", ihdr);
                return (PngTestBytes.Build(chunks), "ihdr");
            }
            case 4:
            {
                // Mutate the inflated image data (filter bytes, samples, length), then re-compress and re-seal.
                byte[] raw;
                try { raw = PngTestBytes.RawImageData(png); }
                catch (InvalidDataException) { return (png, "noop"); }
                var list = new List<byte>(raw);
                switch (random.Next(4))
                {
                    case 0: if (list.Count > 0) list[random.Next(list.Count)] = (byte)random.Next(8); break;
                    case 1: for (int k = 0; k < 5 && list.Count > 0; k++) list[random.Next(list.Count)] = (byte)random.Next(256); break;
                    case 2: int cut = Math.Min(list.Count, random.Next(1, 20)); list.RemoveRange(list.Count - cut, cut); break;
                    default: list.AddRange(new byte[random.Next(1, 300)]); break;
                }
                var rebuilt = chunks.Where(ch => ch.Type != "IDAT").ToList();
                int idatAt = chunks.FindIndex(ch => ch.Type == "IDAT");
                if (idatAt < 0) return (png, "noop");
                byte[] z = PngTestBytes.Deflate(list.ToArray());
                int split = random.Next(z.Length + 1);
                rebuilt.InsertRange(Math.Min(idatAt, rebuilt.Count), [("IDAT", z[..split]), ("IDAT", z[split..])]);
                return (PngTestBytes.Build(rebuilt), "idat-content");
            }
            case 5:
            {
                // Drop, duplicate or swap chunks, sealed.
                int a = random.Next(chunks.Count), b = random.Next(chunks.Count);
                switch (random.Next(3))
                {
                    case 0: chunks.RemoveAt(a); break;
                    case 1: chunks.Insert(b, chunks[a]); break;
                    default: (chunks[a], chunks[b]) = (chunks[b], chunks[a]); break;
                }
                return (PngTestBytes.Build(chunks), "reorder");
            }
            case 6:
            {
                // Corrupt a chunk length field in place (no CRC fix: the structure itself shifts).
                var copy = (byte[])png.Clone();
                int p = 8 + chunks.Take(random.Next(chunks.Count)).Sum(ch => 12 + ch.Data.Length);
                if (p + 4 > copy.Length) return (png, "noop");
                BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(p), (uint)random.Next(5) switch
                {
                    0 => uint.MaxValue,
                    1 => 0x7FFFFFFF,
                    _ => (uint)random.Next(0, 200),
                });
                return (copy, "length");
            }
            default:
            {
                // Insert a random text or ancillary chunk, sealed.
                string type = new[] { "tEXt", "zTXt", "iTXt", "tRNS", "PLTE", "abcd", "ABCD" }[random.Next(7)];
                var data = new byte[random.Next(0, 40)];
                random.NextBytes(data);
                if (data.Length > 2 && random.Next(2) == 0) data[random.Next(1, Math.Min(data.Length, 80))] = 0;
                chunks.Insert(random.Next(1, chunks.Count + 1), (type, data));
                return (PngTestBytes.Build(chunks), $"insert({type})");
            }
        }
    }
}
