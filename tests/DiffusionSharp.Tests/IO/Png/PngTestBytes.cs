using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.IO.Png;

/// <summary>Builds and takes apart PNG byte streams for the tests (chunks with correct CRCs, raw IDAT payloads).</summary>
internal static class PngTestBytes
{
    public static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The chunks of a PNG whose structure is intact up to where it stops being so.</summary>
    public static List<(string Type, byte[] Data)> Chunks(byte[] png)
    {
        var chunks = new List<(string, byte[])>();
        int p = 8;
        while (p + 12 <= png.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(p));
            if (length > png.Length - p - 12) break;
            chunks.Add((Encoding.Latin1.GetString(png, p + 4, 4), png.AsSpan(p + 8, (int)length).ToArray()));
            p += 12 + (int)length;
        }
        return chunks;
    }

    public static byte[] Build(IEnumerable<(string Type, byte[] Data)> chunks)
    {
        using var stream = new MemoryStream();
        stream.Write(Signature);
        foreach (var (type, data) in chunks) PngWriter.WriteChunk(stream, type, data);
        return stream.ToArray();
    }

    public static byte[] Ihdr(int width, int height, byte bitDepth, byte colorType, byte interlace = 0)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = bitDepth;
        ihdr[9] = colorType;
        ihdr[12] = interlace;
        return ihdr;
    }

    public static byte[] Deflate(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true)) zlib.Write(raw);
        return output.ToArray();
    }

    public static byte[] Inflate(byte[] compressed)
    {
        using var zlib = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
        using var output = new MemoryStream();
        zlib.CopyTo(output);
        return output.ToArray();
    }

    /// <summary>The concatenated IDAT payloads of a well-formed PNG, inflated: filter byte + row, per row.</summary>
    public static byte[] RawImageData(byte[] png) =>
        Inflate(Chunks(png).Where(c => c.Type == "IDAT").SelectMany(c => c.Data).ToArray());

    /// <summary>A minimal PNG: IHDR, optional extra chunks before the data, one IDAT of <paramref name="raw"/>, IEND.</summary>
    public static byte[] Minimal(byte[] ihdr, byte[] raw, params (string Type, byte[] Data)[] beforeData) =>
        Build([("IHDR", ihdr), .. beforeData, ("IDAT", Deflate(raw)), ("IEND", [])]);
}
