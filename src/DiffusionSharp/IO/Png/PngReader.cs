using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace DiffusionSharp.IO.Png;

/// <summary>
/// Decodes 8-bit, non-interlaced PNGs of every colour type (grey, RGB, palette, grey + alpha, RGBA) with all
/// five row filters, and collects their tEXt, zTXt and iTXt chunks. Every chunk's CRC is checked, the chunk
/// order is checked (IHDR first, PLTE before IDAT, IDAT chunks consecutive, IEND last), and sizes are capped
/// (<see cref="MaxDimension"/> per side, <see cref="MaxTextLength"/> per inflated text); image memory grows
/// only as decompressed rows actually arrive, so a small file cannot make the reader allocate a huge buffer.
/// Other bit depths and interlaced files are refused with a clear message. Unknown ancillary chunks are
/// skipped; unknown critical chunks are an error. Every failure is a <see cref="PngFormatException"/> naming the source.
/// </summary>
public static class PngReader
{
    /// <summary>Largest width or height accepted.</summary>
    public const int MaxDimension = 16384;

    /// <summary>Largest text a compressed zTXt/iTXt chunk may inflate to, in bytes.</summary>
    public const int MaxTextLength = 64 << 20;

    public static PngImage Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Read(stream, path);
    }

    /// <param name="stream">Read from its current position up to the end of the IEND chunk.</param>
    /// <param name="sourceName">How error messages name the data (a file name, a URL).</param>
    public static PngImage Read(Stream stream, string sourceName = "<stream>")
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new Decoder(stream, sourceName).Decode();
    }

    private readonly record struct ChunkHeader(int Length, string Type, uint TypeCrc);

    private sealed class Decoder(Stream stream, string source)
    {
        private const int InitialPixelCapacity = 1 << 22;
        private const int MaxExtraImageData = 1 << 20;

        private readonly Stream _stream = stream;
        private readonly Dictionary<string, string> _text = new(StringComparer.Ordinal);
        private int _width, _height, _colorType;
        private byte[]? _palette;      // RGB triples
        private byte[]? _transparency; // palette alpha, from tRNS
        private ChunkHeader? _pending; // the header that ended the IDAT run

        public PngImage Decode()
        {
            Span<byte> signature = stackalloc byte[8];
            ReadExactly(signature, "the PNG signature");
            if (!signature.SequenceEqual(PngWriter.Signature))
                throw Error("not a PNG file: the first 8 bytes are not the PNG signature.");
            var first = ReadChunkHeader();
            if (first.Type != "IHDR") throw Error($"the first chunk is {first.Type}, not IHDR.");
            ParseHeader(ReadChunkData(first));

            PngImage? image = null;
            while (true)
            {
                var chunk = _pending ?? ReadChunkHeader();
                _pending = null;
                switch (chunk.Type)
                {
                    case "IHDR":
                        throw Error("a second IHDR chunk.");
                    case "PLTE":
                        if (image is not null) throw Error("a PLTE chunk after the image data.");
                        ParsePalette(ReadChunkData(chunk));
                        break;
                    case "tRNS":
                        var trns = ReadChunkData(chunk);
                        if (_colorType == 3) ParseTransparency(trns);
                        break;
                    case "IDAT":
                        if (image is not null) throw Error("IDAT chunks are not consecutive.");
                        if (_colorType == 3 && _palette is null) throw Error("a palette image without a PLTE chunk before its data.");
                        image = DecodeImage(chunk);
                        break;
                    case "IEND":
                        if (chunk.Length != 0) throw Error($"the IEND chunk has {chunk.Length} data bytes; it must be empty.");
                        ReadChunkData(chunk);
                        if (image is null) throw Error("no IDAT chunk: the file has no image data.");
                        return image;
                    case "tEXt":
                        ParseText(ReadChunkData(chunk));
                        break;
                    case "zTXt":
                        ParseCompressedText(ReadChunkData(chunk));
                        break;
                    case "iTXt":
                        ParseInternationalText(ReadChunkData(chunk));
                        break;
                    default:
                        if (char.IsAsciiLetterUpper(chunk.Type[0]))
                            throw Error($"unknown critical chunk '{chunk.Type}'.");
                        SkipChunk(chunk);
                        break;
                }
            }
        }

        private void ParseHeader(byte[] ihdr)
        {
            if (ihdr.Length != 13) throw Error($"the IHDR chunk has {ihdr.Length} bytes; it must have 13.");
            uint width = BinaryPrimitives.ReadUInt32BigEndian(ihdr), height = BinaryPrimitives.ReadUInt32BigEndian(ihdr.AsSpan(4));
            int bitDepth = ihdr[8], colorType = ihdr[9];
            if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
                throw Error($"invalid image size {width}x{height}.");
            if (width > MaxDimension || height > MaxDimension)
                throw Error($"the image is {width}x{height}; this reader accepts at most {MaxDimension} pixels per side.");
            int[] depths = colorType switch
            {
                0 => [1, 2, 4, 8, 16],
                2 or 4 or 6 => [8, 16],
                3 => [1, 2, 4, 8],
                _ => throw Error($"invalid colour type {colorType}."),
            };
            if (!depths.Contains(bitDepth)) throw Error($"bit depth {bitDepth} is invalid for colour type {colorType}.");
            if (bitDepth != 8) throw Error($"the image has {bitDepth}-bit samples; this reader decodes 8-bit PNGs only.");
            if (ihdr[10] != 0) throw Error($"unknown compression method {ihdr[10]}.");
            if (ihdr[11] != 0) throw Error($"unknown filter method {ihdr[11]}.");
            if (ihdr[12] == 1) throw Error("the image is interlaced (Adam7); this reader decodes non-interlaced PNGs only.");
            if (ihdr[12] != 0) throw Error($"unknown interlace method {ihdr[12]}.");
            (_width, _height, _colorType) = ((int)width, (int)height, colorType);
        }

        private void ParsePalette(byte[] plte)
        {
            if (_palette is not null) throw Error("a second PLTE chunk.");
            if (_colorType is 0 or 4) throw Error($"a PLTE chunk in a colour type {_colorType} (greyscale) image.");
            if (plte.Length == 0 || plte.Length % 3 != 0 || plte.Length > 3 * 256)
                throw Error($"the PLTE chunk has {plte.Length} bytes; it must hold 1 to 256 RGB entries.");
            _palette = plte;
        }

        private void ParseTransparency(byte[] trns)
        {
            if (_palette is null) throw Error("a tRNS chunk before the PLTE chunk.");
            if (trns.Length > _palette.Length / 3)
                throw Error($"the tRNS chunk has {trns.Length} entries but the palette only {_palette.Length / 3}.");
            _transparency = trns;
        }

        private PngImage DecodeImage(ChunkHeader firstIdat)
        {
            int inChannels = _colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
            int outChannels = _colorType == 3 ? (_transparency is null ? 3 : 4) : inChannels;
            int rowBytes = _width * inChannels, outRowBytes = _width * outChannels;
            long total = (long)outRowBytes * _height;
            var pixels = new byte[Math.Min(total, InitialPixelCapacity)];
            var prior = new byte[rowBytes];
            var row = new byte[1 + rowBytes];

            var idat = new IdatStream(this, firstIdat);
            try
            {
                using (var zlib = new ZLibStream(idat, CompressionMode.Decompress, leaveOpen: true))
                {
                    for (int y = 0; y < _height; y++)
                    {
                        int got = zlib.ReadAtLeast(row, row.Length, throwOnEndOfStream: false);
                        if (got < row.Length)
                            throw Error($"the image data ends in row {y} of {_height}: the file is truncated or its IDAT data is short.");
                        int filter = row[0];
                        if (filter >= PngFilters.Count) throw Error($"row {y} has filter type {filter}; PNG defines 0 to 4.");
                        var samples = row.AsSpan(1);
                        PngFilters.Unfilter(filter, samples, prior, inChannels);
                        long end = (long)(y + 1) * outRowBytes;
                        if (end > pixels.Length) Array.Resize(ref pixels, (int)Math.Min(total, Math.Max(end, 2L * pixels.Length)));
                        var destination = pixels.AsSpan(y * outRowBytes, outRowBytes);
                        if (_colorType == 3) ExpandPalette(samples, destination, y);
                        else samples.CopyTo(destination);
                        samples.CopyTo(prior);
                    }
                    // Read to the end of the zlib stream, so that its Adler-32 is checked, tolerating a little surplus.
                    long extra = 0;
                    int n;
                    while ((n = zlib.Read(row)) > 0)
                        if ((extra += n) > MaxExtraImageData)
                            throw Error($"the image data holds more than {MaxExtraImageData} bytes beyond the {_width}x{_height} image.");
                }
                idat.SkipRest();
            }
            catch (InvalidDataException e)
            {
                throw Error($"the image data is not a valid zlib stream ({e.Message}).", e);
            }
            return new PngImage(_width, _height, outChannels, pixels, _text);
        }

        private void ExpandPalette(ReadOnlySpan<byte> indices, Span<byte> destination, int y)
        {
            var palette = _palette!;
            int entries = palette.Length / 3;
            int channels = _transparency is null ? 3 : 4;
            for (int x = 0; x < indices.Length; x++)
            {
                int index = indices[x];
                if (index >= entries) throw Error($"pixel ({x}, {y}) uses palette index {index} but the palette has {entries} entries.");
                var pixel = destination.Slice(x * channels, channels);
                pixel[0] = palette[3 * index];
                pixel[1] = palette[3 * index + 1];
                pixel[2] = palette[3 * index + 2];
                if (channels == 4) pixel[3] = index < _transparency!.Length ? _transparency[index] : (byte)255;
            }
        }

        private void ParseText(byte[] data)
        {
            int split = KeywordEnd(data, "tEXt");
            _text[Encoding.Latin1.GetString(data, 0, split)] = Encoding.Latin1.GetString(data, split + 1, data.Length - split - 1);
        }

        private void ParseCompressedText(byte[] data)
        {
            int split = KeywordEnd(data, "zTXt");
            string keyword = Encoding.Latin1.GetString(data, 0, split);
            if (data.Length < split + 2 || data[split + 1] != 0)
                throw Error($"the zTXt chunk '{keyword}' has no compression method 0.");
            _text[keyword] = Encoding.Latin1.GetString(Inflate(data.AsSpan(split + 2), keyword));
        }

        private void ParseInternationalText(byte[] data)
        {
            int split = KeywordEnd(data, "iTXt");
            string keyword = Encoding.Latin1.GetString(data, 0, split);
            int p = split + 1;
            if (data.Length < p + 2) throw Error($"the iTXt chunk '{keyword}' is cut short.");
            byte compressed = data[p], method = data[p + 1];
            p += 2;
            int language = Array.IndexOf(data, (byte)0, p);
            int translated = language < 0 ? -1 : Array.IndexOf(data, (byte)0, language + 1);
            if (translated < 0) throw Error($"the iTXt chunk '{keyword}' lacks its language tag or translated keyword.");
            var text = data.AsSpan(translated + 1);
            byte[] utf8 = compressed switch
            {
                0 => text.ToArray(),
                1 when method == 0 => Inflate(text, keyword),
                _ => throw Error($"the iTXt chunk '{keyword}' has compression flag {compressed}, method {method}."),
            };
            try
            {
                _text[keyword] = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(utf8);
            }
            catch (DecoderFallbackException e)
            {
                throw Error($"the iTXt chunk '{keyword}' is not valid UTF-8.", e);
            }
        }

        /// <summary>Index of the NUL that ends the keyword, which must be 1 to 79 bytes.</summary>
        private int KeywordEnd(byte[] data, string type)
        {
            int split = Array.IndexOf(data, (byte)0);
            if (split is < 1 or > 79) throw Error($"a {type} chunk without a keyword of 1 to 79 bytes ended by NUL.");
            return split;
        }

        private byte[] Inflate(ReadOnlySpan<byte> compressed, string keyword)
        {
            try
            {
                using var zlib = new ZLibStream(new MemoryStream(compressed.ToArray()), CompressionMode.Decompress);
                using var output = new MemoryStream();
                var buffer = new byte[1 << 16];
                int n;
                while ((n = zlib.Read(buffer)) > 0)
                {
                    if (output.Length + n > MaxTextLength) throw Error($"the text '{keyword}' inflates to more than {MaxTextLength} bytes.");
                    output.Write(buffer, 0, n);
                }
                return output.ToArray();
            }
            catch (InvalidDataException e)
            {
                throw Error($"the compressed text '{keyword}' is not a valid zlib stream ({e.Message}).", e);
            }
        }

        private ChunkHeader ReadChunkHeader()
        {
            Span<byte> head = stackalloc byte[8];
            ReadExactly(head, "a chunk header (no IEND chunk)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(head);
            var type = head[4..];
            foreach (byte b in type)
                if (!char.IsAsciiLetter((char)b))
                    throw Error($"a chunk type of bytes {Convert.ToHexString(type)}; chunk types are four ASCII letters.");
            string name = Encoding.ASCII.GetString(type);
            if (length > int.MaxValue) throw Error($"the {name} chunk claims {length} bytes; PNG chunks hold at most 2^31 - 1.");
            return new ChunkHeader((int)length, name, Crc32.Compute(type));
        }

        /// <summary>Reads a chunk's data and checks its CRC; the buffer grows only as bytes actually arrive.</summary>
        private byte[] ReadChunkData(ChunkHeader chunk)
        {
            var data = new byte[Math.Min(chunk.Length, 1 << 16)];
            int filled = 0;
            while (filled < chunk.Length)
            {
                if (filled == data.Length) Array.Resize(ref data, (int)Math.Min(chunk.Length, 2L * data.Length));
                int n = _stream.Read(data, filled, data.Length - filled);
                if (n == 0) throw Error($"the file ends inside the {chunk.Type} chunk (truncated).");
                filled += n;
            }
            CheckCrc(chunk, Crc32.Update(chunk.TypeCrc, data));
            return data;
        }

        private void SkipChunk(ChunkHeader chunk)
        {
            var buffer = new byte[Math.Min(chunk.Length, 1 << 16)];
            uint crc = chunk.TypeCrc;
            for (int left = chunk.Length; left > 0;)
            {
                int n = _stream.Read(buffer, 0, Math.Min(left, buffer.Length));
                if (n == 0) throw Error($"the file ends inside the {chunk.Type} chunk (truncated).");
                crc = Crc32.Update(crc, buffer.AsSpan(0, n));
                left -= n;
            }
            CheckCrc(chunk, crc);
        }

        private void CheckCrc(ChunkHeader chunk, uint computed)
        {
            Span<byte> stored = stackalloc byte[4];
            ReadExactly(stored, $"the CRC of the {chunk.Type} chunk");
            uint expected = BinaryPrimitives.ReadUInt32BigEndian(stored);
            if (expected != computed)
                throw Error($"CRC mismatch in the {chunk.Type} chunk (stored {expected:X8}, computed {computed:X8}): the file is corrupt.");
        }

        private void ReadExactly(Span<byte> buffer, string what)
        {
            if (_stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length)
                throw Error($"the file ends inside {what} (truncated).");
        }

        private PngFormatException Error(string problem, Exception? inner = null) => PngFormatException.For(source, problem, inner);

        /// <summary>The data of a run of consecutive IDAT chunks as one stream, CRCs checked at each chunk end.</summary>
        private sealed class IdatStream(Decoder decoder, ChunkHeader first) : Stream
        {
            private int _remaining = first.Length;
            private uint _crc = first.TypeCrc;
            private ChunkHeader _current = first;
            private bool _ended;

            public override int Read(Span<byte> buffer)
            {
                while (_remaining == 0)
                {
                    if (_ended) return 0;
                    decoder.CheckCrc(_current, _crc);
                    var next = decoder.ReadChunkHeader();
                    if (next.Type != "IDAT")
                    {
                        decoder._pending = next;
                        _ended = true;
                        return 0;
                    }
                    (_current, _remaining, _crc) = (next, next.Length, next.TypeCrc);
                }
                if (buffer.IsEmpty) return 0;
                int n = decoder._stream.Read(buffer[..Math.Min(buffer.Length, _remaining)]);
                if (n == 0) throw decoder.Error("the file ends inside an IDAT chunk (truncated).");
                _crc = Crc32.Update(_crc, buffer[..n]);
                _remaining -= n;
                return n;
            }

            /// <summary>Consumes what is left of the IDAT run (checking CRCs) up to the next chunk header.</summary>
            public void SkipRest()
            {
                Span<byte> scratch = stackalloc byte[4096];
                while (Read(scratch) > 0) { }
            }

            public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
            public override bool CanRead => true;
            public override bool CanSeek => false;
            public override bool CanWrite => false;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        }
    }
}
