using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace DiffusionSharp.IO.Png;

/// <summary>
/// Writes <see cref="RgbImage"/>s as PNG: signature, IHDR (8-bit RGB, no interlace), the text chunks, IDAT, IEND.
/// Each row takes the filter with the smallest sum of absolute filtered bytes (tried in order None, Sub, Up,
/// Average, Paeth; ties to the lower type), then the whole image goes through one zlib stream
/// (<see cref="CompressionLevel.Optimal"/>) cut into IDAT chunks of at most 64 KiB. Equal input gives equal bytes.
/// Text whose characters are all Latin-1 goes into a tEXt chunk; other text into an uncompressed UTF-8 iTXt
/// chunk, as PIL (and so AUTOMATIC1111's webui) writes its <c>parameters</c> chunk.
/// </summary>
public static class PngWriter
{
    internal static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    internal const int IdatChunkSize = 1 << 16;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Writes <paramref name="path"/> through a temporary file in the same folder that is renamed at the end, so a
    /// failure never leaves a partial PNG. Invalid text chunks throw <see cref="ArgumentException"/> before any file is created.
    /// </summary>
    public static void Write(string path, RgbImage image, IEnumerable<KeyValuePair<string, string>>? textChunks = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var chunks = EncodeTextChunks(textChunks);
        AtomicFile.Write(path, stream => WriteEncoded(stream, image, chunks));
    }

    /// <summary>Writes the PNG to <paramref name="stream"/>; text chunks are validated before the first byte is written.</summary>
    public static void Write(Stream stream, RgbImage image, IEnumerable<KeyValuePair<string, string>>? textChunks = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(image);
        WriteEncoded(stream, image, EncodeTextChunks(textChunks));
    }

    private static void WriteEncoded(Stream stream, RgbImage image, List<(string Type, byte[] Data)> textChunks)
    {
        stream.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], image.Height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: RGB
        ihdr[10] = 0; // compression: deflate
        ihdr[11] = 0; // filter method: adaptive, five types
        ihdr[12] = 0; // no interlace
        WriteChunk(stream, "IHDR", ihdr);
        foreach (var (type, data) in textChunks) WriteChunk(stream, type, data);

        int rowBytes = image.Width * 3;
        var prior = new byte[rowBytes];
        var filtered = new byte[1 + rowBytes];
        var scratch = new byte[rowBytes];
        using (var idat = new IdatStream(stream))
        {
            using (var zlib = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
            {
                for (int y = 0; y < image.Height; y++)
                {
                    var row = image.Pixels.AsSpan(y * rowBytes, rowBytes);
                    filtered[0] = (byte)PngFilters.FilterAdaptive(row, prior, bpp: 3, filtered.AsSpan(1), scratch);
                    zlib.Write(filtered);
                    row.CopyTo(prior);
                }
            }
        }
        WriteChunk(stream, "IEND", []);
        stream.Flush();
    }

    internal static void WriteChunk(Stream stream, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        Encoding.ASCII.GetBytes(type, head[4..]);
        uint crc = Crc32.Update(Crc32.Compute(head[4..]), data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        stream.Write(head);
        stream.Write(data);
        stream.Write(tail);
    }

    /// <summary>Validates keywords and text and encodes each pair as a tEXt or iTXt chunk body.</summary>
    private static List<(string Type, byte[] Data)> EncodeTextChunks(IEnumerable<KeyValuePair<string, string>>? textChunks)
    {
        var chunks = new List<(string, byte[])>();
        if (textChunks is null) return chunks;
        var keywords = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (keyword, text) in textChunks)
        {
            ValidateKeyword(keyword);
            if (!keywords.Add(keyword)) throw new ArgumentException($"The PNG text keyword '{keyword}' is given twice.", nameof(textChunks));
            ArgumentNullException.ThrowIfNull(text, nameof(textChunks));
            if (text.Contains('\0')) throw new ArgumentException($"The PNG text for '{keyword}' contains a NUL character.", nameof(textChunks));
            var body = new List<byte>(keyword.Length + text.Length + 8);
            body.AddRange(Encoding.Latin1.GetBytes(keyword));
            body.Add(0);
            if (text.All(c => c <= '\u00FF'))
            {
                body.AddRange(Encoding.Latin1.GetBytes(text));
                chunks.Add(("tEXt", body.ToArray()));
            }
            else
            {
                byte[] utf8;
                try { utf8 = StrictUtf8.GetBytes(text); }
                catch (EncoderFallbackException e)
                {
                    throw new ArgumentException($"The PNG text for '{keyword}' is not valid UTF-16 (a lone surrogate).", nameof(textChunks), e);
                }
                body.AddRange([0, 0, 0, 0]); // uncompressed, method 0, empty language tag, empty translated keyword
                body.AddRange(utf8);
                chunks.Add(("iTXt", body.ToArray()));
            }
        }
        return chunks;
    }

    /// <summary>PNG keywords: 1-79 printable Latin-1 characters (32-126, 161-255), no leading, trailing or double spaces.</summary>
    private static void ValidateKeyword(string keyword)
    {
        if (string.IsNullOrEmpty(keyword) || keyword.Length > 79)
            throw new ArgumentException($"PNG text keywords are 1 to 79 characters long, got '{keyword}'.", "textChunks");
        foreach (char c in keyword)
            if (c is < ' ' or > '\u00FF' or (> '~' and < '\u00A1'))
                throw new ArgumentException($"The PNG text keyword '{keyword}' contains U+{(int)c:X4}; keywords are printable Latin-1.", "textChunks");
        if (keyword[0] == ' ' || keyword[^1] == ' ' || keyword.Contains("  ", StringComparison.Ordinal))
            throw new ArgumentException($"The PNG text keyword '{keyword}' has a leading, trailing or double space.", "textChunks");
    }

    /// <summary>Cuts what is written to it into IDAT chunks of <see cref="IdatChunkSize"/> bytes (the last one shorter).</summary>
    private sealed class IdatStream(Stream output) : Stream
    {
        private readonly byte[] _buffer = new byte[IdatChunkSize];
        private int _count;

        public override void Write(ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                int n = Math.Min(data.Length, _buffer.Length - _count);
                data[..n].CopyTo(_buffer.AsSpan(_count));
                _count += n;
                data = data[n..];
                if (_count == _buffer.Length) EmitChunk();
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        // Called by the zlib stream after every block; chunks are cut only when full or on dispose, so bytes stay deterministic.
        public override void Flush() { }

        protected override void Dispose(bool disposing)
        {
            if (disposing && _count > 0) EmitChunk();
            base.Dispose(disposing);
        }

        private void EmitChunk()
        {
            WriteChunk(output, "IDAT", _buffer.AsSpan(0, _count));
            _count = 0;
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
