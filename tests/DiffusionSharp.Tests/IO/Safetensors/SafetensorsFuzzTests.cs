using System.Buffers.Binary;
using System.Text;
using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Tests.IO.Safetensors;

/// <summary>
/// Seeded mutation fuzzing of <see cref="SafetensorsFile.Open"/>: every mutated file must either open, with
/// every tensor's bytes inside the file and readable, or fail with <see cref="SafetensorsFormatException"/>.
/// Set DIFFUSIONSHARP_FUZZ_ITERATIONS for a longer run.
/// </summary>
public class SafetensorsFuzzTests
{
    private static readonly string[] Tokens =
        ["\"", ",", "{", "}", "[", "]", ":", "-", "0", "9", " ", "e", ".", "\\", "null", "1e9", "\"F16\"", "\"BOOL\"", "\"__metadata__\"", "18446744073709551615"];

    private static readonly string[] DTypeStrings = Enum.GetValues<SafetensorsDType>().Select(d => d.ToHeaderString()).Concat(["F128", "f32", ""]).ToArray();

    private static byte[][] Seeds()
    {
        byte[] Small()
        {
            using var stream = new MemoryStream();
            SafetensorsWriter.Write(stream,
            [
                new SafetensorEntry("a.weight", SafetensorsDType.F16, [2, 3], Enumerable.Range(0, 12).Select(i => (byte)(i * 37)).ToArray()),
                new SafetensorEntry("b", SafetensorsDType.BF16, [], new byte[] { 0x80, 0x3F }),
                new SafetensorEntry("empty", SafetensorsDType.F32, [0], Array.Empty<byte>()),
                new SafetensorEntry("q", SafetensorsDType.F8E4M3, [5], new byte[] { 1, 2, 3, 0x7E, 0xFF }),
                new SafetensorEntry("i", SafetensorsDType.I64, [1], new byte[8]),
            ], new Dictionary<string, string> { ["format"] = "pt" });
            return stream.ToArray();
        }
        return
        [
            Small(),
            File.ReadAllBytes(IoTestFiles.Fixture("misaligned.safetensors")),
            File.ReadAllBytes(IoTestFiles.Fixture("writer_layout.safetensors")),
            File.ReadAllBytes(IoTestFiles.Fixture("dtypes.safetensors")),
        ];
    }

    [Fact]
    public void MutatedFiles_OpenCleanlyOrThrowFormatException()
    {
        int iterations = IoTestFiles.FuzzIterations(3000);
        var seeds = Seeds();
        using var folder = new TempFolder();
        string path = folder.File("fuzz.safetensors");
        int opened = 0, rejected = 0;
        for (int iteration = 0; iteration < iterations; iteration++)
        {
            var random = new Random(iteration);
            var bytes = new List<byte>(seeds[random.Next(seeds.Length)]);
            string applied = "";
            for (int m = random.Next(1, 4); m > 0; m--) applied += Mutate(bytes, random) + " ";
            byte[] mutated = bytes.ToArray();
            File.WriteAllBytes(path, mutated);
            try
            {
                using var file = SafetensorsFile.Open(path);
                CheckEveryTensorIsReadable(file, mutated.Length);
                opened++;
            }
            catch (SafetensorsFormatException e)
            {
                Assert.StartsWith(path + ": ", e.Message);
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iteration} (mutations: {applied}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        // Both outcomes must be common, or the mutations are not exercising the parser.
        Assert.True(opened > iterations / 50, $"only {opened} of {iterations} mutated files opened");
        Assert.True(rejected > iterations / 2, $"only {rejected} of {iterations} mutated files were rejected");
    }

    private static void CheckEveryTensorIsReadable(SafetensorsFile file, long fileLength)
    {
        long cursor = 0;
        foreach (var t in file.Tensors)
        {
            Assert.Equal(cursor, t.DataOffset);
            cursor += t.ByteLength;
            Assert.True(file.DataStart + t.DataOffset + t.ByteLength <= fileLength, t.Name);
            int sum = 0;
            foreach (byte b in file.GetBytes(t)) sum += b;
            if (t.DType.CanConvertToFloat32() && t.ElementCount <= 1 << 20)
                Assert.Equal(t.ElementCount, file.ReadFloat32(t.Name).Length);
        }
        Assert.Equal(fileLength, file.DataStart + cursor);
    }

    private static string Mutate(List<byte> bytes, Random random)
    {
        int headerEnd = HeaderEnd(bytes);
        switch (random.Next(9))
        {
            case 0:
                if (bytes.Count == 0) return "noop";
                for (int k = random.Next(1, 5); k > 0; k--) bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                return "flip";
            case 1:
                if (headerEnd <= 8) return "noop";
                bytes[random.Next(8, headerEnd)] = (byte)random.Next(256);
                return "flip-header";
            case 2:
                int keep = random.Next(bytes.Count + 1);
                bytes.RemoveRange(keep, bytes.Count - keep);
                return $"truncate@{keep}";
            case 3:
                if (bytes.Count < 8) return "noop";
                ulong length = random.Next(6) switch
                {
                    0 => (ulong)random.NextInt64() * 3,
                    1 => (ulong)Math.Max(0, headerEnd - 8 + random.Next(-3, 4)),
                    2 => SafetensorsFile.MaxHeaderLength + (ulong)random.Next(-1, 2),
                    3 => (ulong)(bytes.Count - 8),
                    4 => ulong.MaxValue - (ulong)random.Next(10),
                    _ => (ulong)random.Next(0, 64),
                };
                Span<byte> le = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(le, length);
                for (int i = 0; i < 8; i++) bytes[i] = le[i];
                return $"length={length}";
            case 4:
                return EditHeader(bytes, headerEnd, random, insert: true);
            case 5:
                return EditHeader(bytes, headerEnd, random, insert: false);
            case 6:
            {
                var digits = Enumerable.Range(8, Math.Max(0, headerEnd - 8)).Where(i => bytes[i] is >= (byte)'0' and <= (byte)'9').ToList();
                if (digits.Count == 0) return "noop";
                int at = digits[random.Next(digits.Count)];
                bytes[at] = (byte)('0' + random.Next(10));
                return $"digit@{at}";
            }
            case 7:
            {
                if (headerEnd <= 8) return "noop";
                string header = Encoding.UTF8.GetString(bytes.GetRange(8, headerEnd - 8).ToArray());
                int at = header.IndexOf("\"dtype\":\"", random.Next(header.Length), StringComparison.Ordinal);
                int start = at + 9, end = at < 0 ? -1 : header.IndexOf('"', start);
                if (end < 0) return "noop";
                string replacement = DTypeStrings[random.Next(DTypeStrings.Length)];
                header = header[..start] + replacement + header[end..];
                ReplaceHeader(bytes, headerEnd, Encoding.UTF8.GetBytes(header), fixLength: random.Next(4) > 0);
                return $"dtype={replacement}";
            }
            default:
                var garbage = new byte[random.Next(1, 9)];
                random.NextBytes(garbage);
                bytes.AddRange(garbage);
                return "append";
        }
    }

    private static string EditHeader(List<byte> bytes, int headerEnd, Random random, bool insert)
    {
        if (headerEnd <= 8) return "noop";
        var header = bytes.GetRange(8, headerEnd - 8);
        int at = random.Next(header.Count + (insert ? 1 : 0));
        if (insert) header.InsertRange(at, Encoding.UTF8.GetBytes(Tokens[random.Next(Tokens.Length)]));
        else if (header.Count > 0) header.RemoveRange(at, Math.Min(random.Next(1, 4), header.Count - at));
        ReplaceHeader(bytes, headerEnd, header.ToArray(), fixLength: random.Next(5) > 0);
        return insert ? $"insert@{at}" : $"delete@{at}";
    }

    private static void ReplaceHeader(List<byte> bytes, int headerEnd, byte[] header, bool fixLength)
    {
        bytes.RemoveRange(8, headerEnd - 8);
        bytes.InsertRange(8, header);
        if (!fixLength) return;
        Span<byte> le = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(le, (ulong)header.Length);
        for (int i = 0; i < 8; i++) bytes[i] = le[i];
    }

    /// <summary>End of the header region the length prefix claims, clamped to the file.</summary>
    private static int HeaderEnd(List<byte> bytes)
    {
        if (bytes.Count < 8) return 0;
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes.GetRange(0, 8).ToArray());
        return n > (ulong)(bytes.Count - 8) ? 8 : 8 + (int)n;
    }
}
