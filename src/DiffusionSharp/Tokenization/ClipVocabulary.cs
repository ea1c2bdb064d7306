using System.IO.Compression;
using System.Runtime.CompilerServices;
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
internal sealed class ClipVocabulary
{
    /// <summary>Merges CLIP uses: 49152 - 256 - 2 = 48894 (OpenAI's file holds 262,144; the rest are ignored).</summary>
    public const int MergeCount = 49152 - 256 - 2;

    public const string StartText = "<|startoftext|>";
    public const string EndText = "<|endoftext|>";
    private const string EndOfWord = "</w>";

    /// <summary>One entry of the merge table: its priority (lower merges first) and the id of the merged symbol.</summary>
    public readonly record struct Merge(int Rank, int Result);

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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run once per process: skip tier-0 code (measured 3x faster first load)
    public static ClipVocabulary FromOpenAiMerges(Stream gzipStream, string source)
    {
        List<string> lines;
        try
        {
            using var gzip = new GZipStream(gzipStream, CompressionMode.Decompress);
            using var reader = new StreamReader(gzip, new UTF8Encoding(false, throwOnInvalidBytes: true));
            lines = new List<string>(MergeCount + 1);
            while (lines.Count <= MergeCount && reader.ReadLine() is { } line) lines.Add(line);
        }
        catch (Exception e) when (e is InvalidDataException or DecoderFallbackException)
        {
            throw new InvalidDataException($"{source}: not a gzip-compressed UTF-8 merges file ({e.Message})", e);
        }
        if (lines.Count <= MergeCount)
            throw new InvalidDataException($"{source}: holds {Math.Max(0, lines.Count - 1)} merges after its header line; CLIP uses the first {MergeCount}.");

        var tokens = new string[ClipTokenizer.VocabSize];
        for (int i = 0; i < 256; i++)
        {
            string symbol = ByteLevelAlphabet.CharacterOf[ByteLevelAlphabet.VocabularyOrder[i]].ToString();
            tokens[i] = symbol;
            tokens[256 + i] = symbol + EndOfWord;
        }
        var pairs = new (string Left, string Right)[MergeCount];
        for (int rank = 0; rank < MergeCount; rank++)
        {
            pairs[rank] = ParseMerge(lines[rank + 1], source, lineNumber: rank + 2);
            tokens[512 + rank] = pairs[rank].Left + pairs[rank].Right;
        }
        tokens[ClipTokenizer.StartToken] = StartText;
        tokens[ClipTokenizer.EndToken] = EndText;

        var ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
            if (!ids.TryAdd(tokens[id], id))
                throw new InvalidDataException($"{source}: token \"{tokens[id]}\" (id {id}) repeats id {ids[tokens[id]]}; not the CLIP merges file.");
        return Build(tokens, ids, pairs, source, source);
    }

    /// <summary>
    /// Reads a diffusers/HF <c>tokenizer/</c> folder's <c>vocab.json</c> (token -> id, 49408 entries, ids 0..49407)
    /// and <c>merges.txt</c> (a <c>#version</c> header line, then one merge per line; like HF <c>CLIPTokenizer</c>,
    /// only the first 48894 are used).
    /// </summary>
    public static ClipVocabulary FromHuggingFaceFiles(string vocabJsonPath, string mergesTxtPath)
    {
        var tokens = ReadVocabJson(vocabJsonPath);
        var ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
            if (!ids.TryAdd(tokens[id], id))
                throw new InvalidDataException($"{vocabJsonPath}: token \"{Shorten(tokens[id])}\" appears twice (ids {ids[tokens[id]]} and {id}).");

        string[] lines = ReadText(mergesTxtPath).Split('\n');
        if (!lines[0].StartsWith("#version", StringComparison.Ordinal))
            throw new InvalidDataException($"{mergesTxtPath}: the first line should be the '#version: 0.2' header, found \"{Shorten(lines[0])}\".");
        var merges = new List<(string, string)>(MergeCount);
        for (int i = 1; i < lines.Length && merges.Count < MergeCount; i++)
        {
            if (lines[i].Trim().Length == 0 && i == lines.Length - 1) break; // the file's final newline
            merges.Add(ParseMerge(lines[i], mergesTxtPath, lineNumber: i + 1));
        }
        if (merges.Count < MergeCount)
            throw new InvalidDataException($"{mergesTxtPath}: holds {merges.Count} merges; the CLIP tokenizer has {MergeCount}.");

        for (int special = ClipTokenizer.StartToken; special <= ClipTokenizer.EndToken; special++)
        {
            string expected = special == ClipTokenizer.StartToken ? StartText : EndText;
            if (tokens[special] != expected)
                throw new InvalidDataException($"{vocabJsonPath}: id {special} should be \"{expected}\", found \"{Shorten(tokens[special])}\".");
        }
        return Build(tokens, ids, merges.ToArray(), vocabJsonPath, mergesTxtPath);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ClipVocabulary Build(string[] tokens, Dictionary<string, int> ids, (string Left, string Right)[] pairs,
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

        var merges = new Dictionary<long, Merge>(pairs.Length);
        for (int rank = 0; rank < pairs.Length; rank++)
        {
            var (left, right) = pairs[rank];
            int leftId = LookUp(left), rightId = LookUp(right), result = LookUp(left + right);
            if (!merges.TryAdd(PairKey(leftId, rightId), new Merge(rank, result)))
                throw new InvalidDataException($"{mergesSource}: merge \"{left} {right}\" (merge {rank + 1}) appears twice.");

            int LookUp(string symbol) => ids.TryGetValue(symbol, out int id) ? id
                : throw new InvalidDataException($"{mergesSource}: merge {rank + 1} \"{left} {right}\" uses \"{Shorten(symbol)}\", which is not in the vocabulary ({vocabSource}).");
        }
        return new ClipVocabulary(tokens, byteSymbol, byteSymbolEndOfWord, merges);
    }

    /// <summary>A merge line: two symbols separated by whitespace (Python's <c>str.split()</c>), nothing else.</summary>
    private static (string Left, string Right) ParseMerge(string line, string source, int lineNumber)
    {
        int space = line.IndexOf(' ');
        if (space > 0 && space < line.Length - 1 && line.IndexOf(' ', space + 1) < 0 && !line.Contains('\t') && !line.Contains('\r'))
            return (line[..space], line[(space + 1)..]);
        string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2)
            throw new InvalidDataException($"{source}: line {lineNumber} should hold one merge, two symbols separated by a space; found \"{Shorten(line)}\".");
        return (parts[0], parts[1]);
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
                if (!entry.Value.TryGetInt32(out int id) || id < 0 || id >= tokens.Length)
                    throw new InvalidDataException($"{path}: token \"{Shorten(entry.Name)}\" has id {entry.Value}; ids must be integers 0..{tokens.Length - 1}.");
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
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"{path}: every id must be a JSON number ({e.Message})", e);
        }
        return tokens;
    }

    /// <summary>Largest tokenizer file read; CLIP's vocab.json is about 0.9 MB and merges.txt about 0.5 MB.</summary>
    private const long MaxFileBytes = 64L << 20;

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

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
