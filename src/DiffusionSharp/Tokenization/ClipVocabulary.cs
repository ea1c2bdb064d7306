using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace DiffusionSharp.Tokenization;

/// <summary>
/// The CLIP byte-level BPE model: every token string by id, the ids of the 256 byte symbols (alone and ending a
/// word), and the merge table (pair of ids -> rank and merged id). Immutable, so safe to share between threads.
/// Built either from OpenAI's <c>bpe_simple_vocab_16e6.txt.gz</c> the way <c>simple_tokenizer.py</c> builds it, or
/// from a diffusers <c>tokenizer/</c> folder (<c>vocab.json</c> + <c>merges.txt</c>) the way HF <c>CLIPTokenizer</c>
/// reads it.
/// </summary>
/// <remarks>
/// Loading parses the merges as spans of one string and resolves symbols through a span lookup, so the only strings
/// allocated are the 49408 tokens themselves (load time: docs/TOKENIZER.md).
/// </remarks>
internal sealed class ClipVocabulary
{
    /// <summary>Merges CLIP uses: 49152 - 256 - 2 = 48894 (OpenAI's file holds 262,144; the rest are ignored).</summary>
    public const int MergeCount = 49152 - 256 - 2;

    public const string StartText = "<|startoftext|>";
    public const string EndText = "<|endoftext|>";
    private const string EndOfWord = "</w>";

    /// <summary>Largest tokenizer file read; CLIP's vocab.json is about 0.9 MB and merges.txt about 0.5 MB.</summary>
    private const long MaxFileBytes = 64L << 20;

    /// <summary>One entry of the merge table: its priority (lower merges first) and the id of the merged symbol.</summary>
    public readonly record struct Merge(int Rank, int Result);

    /// <summary>Where one merge line's two symbols lie in the merges text.</summary>
    private readonly record struct MergeLine(int LeftStart, int LeftLength, int RightStart, int RightLength)
    {
        public ReadOnlySpan<char> Left(string text) => text.AsSpan(LeftStart, LeftLength);

        public ReadOnlySpan<char> Right(string text) => text.AsSpan(RightStart, RightLength);
    }

    private readonly Dictionary<long, Merge> _merges;

    /// <summary>Token string by id, e.g. <c>Tokens[2368] == "cat&lt;/w&gt;"</c>.</summary>
    public string[] Tokens { get; }

    /// <summary>Id of the symbol for byte b inside a word.</summary>
    public int[] ByteSymbol { get; }

    /// <summary>Id of the symbol for byte b as the last symbol of a word (its string ends in <c>&lt;/w&gt;</c>).</summary>
    public int[] ByteSymbolEndOfWord { get; }

    private ClipVocabulary(string[] tokens, int[] byteSymbol, int[] byteSymbolEndOfWord, Dictionary<long, Merge> merges)
    {
        Tokens = tokens;
        ByteSymbol = byteSymbol;
        ByteSymbolEndOfWord = byteSymbolEndOfWord;
        _merges = merges;
    }

    public bool TryGetMerge(int left, int right, out Merge merge) => _merges.TryGetValue(PairKey(left, right), out merge);

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// Reads OpenAI's gzip merges file: a header line, then one merge per line ("a b"). The vocabulary is the 256
    /// byte characters, the same with <c>&lt;/w&gt;</c>, each of the first <see cref="MergeCount"/> merges joined,
    /// then <c>&lt;|startoftext|&gt;</c> (49406) and <c>&lt;|endoftext|&gt;</c> (49407): 49408 tokens.
    /// </summary>
    public static ClipVocabulary FromOpenAiMerges(Stream gzipStream, string source)
    {
        string text = ReadOpenAiMergesText(gzipStream, source);
        MergeLine[] merges = ParseMerges(text, source);

        var tokens = new string[ClipTokenizer.VocabSize];
        for (int i = 0; i < 256; i++)
        {
            string symbol = ByteLevelAlphabet.CharacterOf[ByteLevelAlphabet.VocabularyOrder[i]].ToString();
            tokens[i] = symbol;
            tokens[256 + i] = symbol + EndOfWord;
        }
        for (int rank = 0; rank < MergeCount; rank++)
            tokens[512 + rank] = string.Concat(merges[rank].Left(text), merges[rank].Right(text));
        tokens[ClipTokenizer.StartToken] = StartText;
        tokens[ClipTokenizer.EndToken] = EndText;

        var ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
            if (!ids.TryAdd(tokens[id], id))
                throw new InvalidDataException($"{source}: token \"{Shorten(tokens[id])}\" (id {id}) repeats id {ids[tokens[id]]}; not the CLIP merges file.");
        return Build(tokens, ids, text, merges, source, source);
    }

    /// <summary>
    /// Reads a diffusers/HF <c>tokenizer/</c> folder's <c>vocab.json</c> (token -> id, 49408 entries, ids 0..49407)
    /// and <c>merges.txt</c> (a <c>#version</c> header line, then one merge per line; like HF <c>CLIPTokenizer</c>,
    /// only the first 48894 are used).
    /// </summary>
    public static ClipVocabulary FromHuggingFaceFiles(string vocabJsonPath, string mergesTxtPath)
    {
        string[] tokens = ReadVocabJson(vocabJsonPath);
        var ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
            if (!ids.TryAdd(tokens[id], id))
                throw new InvalidDataException($"{vocabJsonPath}: token \"{Shorten(tokens[id])}\" appears twice (ids {ids[tokens[id]]} and {id}).");
        for (int special = ClipTokenizer.StartToken; special <= ClipTokenizer.EndToken; special++)
        {
            string expected = special == ClipTokenizer.StartToken ? StartText : EndText;
            if (tokens[special] != expected)
                throw new InvalidDataException($"{vocabJsonPath}: id {special} should be \"{expected}\", found \"{Shorten(tokens[special])}\".");
        }

        // HF's CLIPTokenizer reads read().strip().split("\n")[1:48895]: surrounding blank lines are not merges.
        string text = PythonText.Strip(ReadText(mergesTxtPath));
        if (!text.StartsWith("#version", StringComparison.Ordinal))
            throw new InvalidDataException($"{mergesTxtPath}: the first line should be the '#version: 0.2' header, found \"{Shorten(FirstLine(text))}\".");
        return Build(tokens, ids, text, ParseMerges(text, mergesTxtPath), vocabJsonPath, mergesTxtPath);
    }

    private static ClipVocabulary Build(string[] tokens, Dictionary<string, int> ids, string mergesText, MergeLine[] merges,
        string vocabSource, string mergesSource)
    {
        foreach (string token in tokens)
            foreach (char c in token)
                if (ByteLevelAlphabet.ByteOf(c) < 0)
                    throw new InvalidDataException(
                        $"{vocabSource}: token \"{Shorten(token)}\" holds U+{(int)c:X4}, which is not one of the 256 byte-level characters.");

        var byteSymbol = new int[256];
        var byteSymbolEndOfWord = new int[256];
        for (int b = 0; b < 256; b++)
        {
            string symbol = ByteLevelAlphabet.CharacterOf[b].ToString();
            byteSymbol[b] = ids.TryGetValue(symbol, out int id) ? id
                : throw new InvalidDataException($"{vocabSource}: lacks the byte symbol \"{symbol}\" (byte 0x{b:X2}).");
            byteSymbolEndOfWord[b] = ids.TryGetValue(symbol + EndOfWord, out id) ? id
                : throw new InvalidDataException($"{vocabSource}: lacks the byte symbol \"{symbol}{EndOfWord}\" (byte 0x{b:X2}).");
        }

        var lookup = ids.GetAlternateLookup<ReadOnlySpan<char>>();
        var table = new Dictionary<long, Merge>(merges.Length);
        var joined = new char[64];
        for (int rank = 0; rank < merges.Length; rank++)
        {
            ReadOnlySpan<char> left = merges[rank].Left(mergesText), right = merges[rank].Right(mergesText);
            if (joined.Length < left.Length + right.Length) joined = new char[left.Length + right.Length];
            left.CopyTo(joined);
            right.CopyTo(joined.AsSpan(left.Length));
            ReadOnlySpan<char> result = joined.AsSpan(0, left.Length + right.Length);

            if (!lookup.TryGetValue(left, out int leftId) || !lookup.TryGetValue(right, out int rightId) || !lookup.TryGetValue(result, out int resultId))
            {
                string missing = !lookup.TryGetValue(left, out _) ? left.ToString() : !lookup.TryGetValue(right, out _) ? right.ToString() : result.ToString();
                throw new InvalidDataException(
                    $"{mergesSource}: merge {rank + 1} \"{left} {right}\" uses \"{Shorten(missing)}\", which is not in the vocabulary ({vocabSource}).");
            }
            if (!table.TryAdd(PairKey(leftId, rightId), new Merge(rank, resultId)))
                throw new InvalidDataException($"{mergesSource}: merge \"{left} {right}\" (merge {rank + 1}) appears twice.");
        }
        return new ClipVocabulary(tokens, byteSymbol, byteSymbolEndOfWord, table);
    }

    /// <summary>
    /// The first <see cref="MergeCount"/> + 1 lines (header included) of OpenAI's gzip merges file, decoded as UTF-8.
    /// The file holds 262,145 lines; only the first 0.5 MB are inflated.
    /// </summary>
    private static string ReadOpenAiMergesText(Stream gzipStream, string source)
    {
        var data = new byte[1 << 20];
        int length = 0, lines = 0, end = -1;
        try
        {
            using var gzip = new GZipStream(gzipStream, CompressionMode.Decompress);
            while (end < 0)
            {
                if (length == data.Length)
                {
                    if (data.Length >= MaxFileBytes)
                        throw new InvalidDataException($"{source}: more than {MaxFileBytes} bytes before merge {MergeCount}; not the CLIP merges file.");
                    Array.Resize(ref data, data.Length * 2);
                }
                int read = gzip.Read(data, length, data.Length - length);
                if (read == 0)
                {
                    if (length > 0 && data[length - 1] != '\n' && ++lines == MergeCount + 1) end = length; // last line without '\n'
                    break;
                }
                for (int i = Array.IndexOf(data, (byte)'\n', length, read); i >= 0; i = Array.IndexOf(data, (byte)'\n', i + 1, length + read - i - 1))
                {
                    if (++lines == MergeCount + 1) { end = i + 1; break; }
                }
                length += read;
            }
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{source}: not a gzip-compressed merges file ({e.Message})", e);
        }
        if (end < 0)
            throw new InvalidDataException($"{source}: holds {Math.Max(0, lines - 1)} merges after its header line; CLIP uses the first {MergeCount}.");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(data, 0, end);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{source}: not valid UTF-8 ({e.Message})", e);
        }
    }

    /// <summary>
    /// The first <see cref="MergeCount"/> merges of a merges text, after its header line. Lines end at '\n'; a merge is
    /// two symbols separated by whitespace, as Python's <c>str.split()</c> reads it (so a '\r' before '\n' is fine).
    /// </summary>
    private static MergeLine[] ParseMerges(string text, string source)
    {
        var merges = new MergeLine[MergeCount];
        int position = text.IndexOf('\n') + 1;
        for (int rank = 0; rank < MergeCount; rank++)
        {
            if (position == 0 || position > text.Length)
                throw new InvalidDataException($"{source}: holds {rank} merges after its header line; the CLIP tokenizer has {MergeCount}.");
            int lineEnd = text.IndexOf('\n', position);
            if (lineEnd < 0) lineEnd = text.Length;
            merges[rank] = ParseMergeLine(text, position, lineEnd, source, lineNumber: rank + 2);
            position = lineEnd + 1;
        }
        return merges;
    }

    private static MergeLine ParseMergeLine(string text, int start, int end, string source, int lineNumber)
    {
        Span<int> fields = stackalloc int[4]; // start and end of the two symbols
        int count = 0, i = start;
        while (true)
        {
            while (i < end && PythonText.IsStripSpace(text[i])) i++;
            if (i == end) break;
            int fieldStart = i;
            while (i < end && !PythonText.IsStripSpace(text[i])) i++;
            if (count == 2) { count = 3; break; }
            fields[2 * count] = fieldStart;
            fields[2 * count + 1] = i;
            count++;
        }
        if (count != 2)
            throw new InvalidDataException(
                $"{source}: line {lineNumber} should hold one merge, two symbols separated by a space; found \"{Shorten(text[start..end])}\".");
        return new MergeLine(fields[0], fields[1] - fields[0], fields[2], fields[3] - fields[2]);
    }

    private static string[] ReadVocabJson(string path)
    {
        var tokens = new string[ClipTokenizer.VocabSize];
        try
        {
            using var document = JsonDocument.Parse(ReadText(path));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: should be a JSON object mapping each token to its id.");
            int count = 0;
            foreach (var entry in document.RootElement.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0 || id >= tokens.Length)
                    throw new InvalidDataException($"{path}: token \"{Shorten(entry.Name)}\" has id {entry.Value.GetRawText()}; ids must be integers 0..{tokens.Length - 1}.");
                if (tokens[id] is { } other)
                    throw new InvalidDataException($"{path}: id {id} is given to both \"{Shorten(other)}\" and \"{Shorten(entry.Name)}\".");
                tokens[id] = entry.Name;
                count++;
            }
            if (count != tokens.Length)
                throw new InvalidDataException($"{path}: holds {count} tokens; the CLIP vocabulary has {tokens.Length}.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
        return tokens;
    }

    private static string ReadText(string path)
    {
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxFileBytes)
                throw new InvalidDataException($"{path}: {length} bytes is too large for a CLIP tokenizer file (at most {MaxFileBytes}).");
            return File.ReadAllText(path, new UTF8Encoding(false, throwOnInvalidBytes: true));
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{path}: not valid UTF-8 ({e.Message})", e);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"CLIP tokenizer file not found: {path}", path, e);
        }
    }

    private static string FirstLine(string text) => text.IndexOf('\n') is var end and >= 0 ? text[..end] : text;

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
