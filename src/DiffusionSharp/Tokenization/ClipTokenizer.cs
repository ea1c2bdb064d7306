using System.Collections.Concurrent;
using System.Text;

namespace DiffusionSharp.Tokenization;

/// <summary>
/// The CLIP BPE tokenizer of Stable Diffusion 1.x (openai/CLIP <c>simple_tokenizer.py</c>; HF <c>CLIPTokenizer</c>
/// of openai/clip-vit-large-patch14 uses the same vocabulary and merges). A prompt is cleaned (a subset of ftfy,
/// HTML unescaping, whitespace collapsing, Python lower-casing), split into words (letter runs, single digits,
/// runs of other symbols, contractions), and each word's UTF-8 bytes are merged by byte-level BPE into ids.
/// docs/TOKENIZER.md says what is replicated and what is not.
/// Instances are immutable apart from a bounded, thread-safe cache of encoded words: safe for concurrent use.
/// </summary>
public sealed class ClipTokenizer
{
    /// <summary><c>&lt;|startoftext|&gt;</c>, which opens every framed prompt.</summary>
    public const int StartToken = 49406;

    /// <summary><c>&lt;|endoftext|&gt;</c>, which closes every framed prompt and, for SD 1.x, pads it.</summary>
    public const int EndToken = 49407;

    /// <summary>Tokens in the CLIP vocabulary.</summary>
    public const int VocabSize = 49408;

    /// <summary>CLIP's context length: start, 75 prompt tokens, end.</summary>
    public const int DefaultMaxLength = 77;

    /// <summary>Longest text accepted, in UTF-16 code units; prompts are far shorter.</summary>
    public const int MaxTextLength = 1 << 16;

    /// <summary>Largest <c>maxLength</c> <see cref="Tokenize"/> accepts (long prompts are chunked by 77 upstream).</summary>
    public const int MaxFramedLength = 1 << 20;

    private const int MaxCachedWords = 1 << 16;

    private static readonly Lazy<ClipTokenizer> s_default = new(
        () =>
        {
            using var merges = ClipResources.Open(ClipResources.MergesFile);
            return new ClipTokenizer(ClipVocabulary.FromOpenAiMerges(merges, "Resources/clip/" + ClipResources.MergesFile));
        },
        LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly ClipVocabulary _vocabulary;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private int _cachedWords; // ConcurrentDictionary.Count takes every lock; this counts the entries added instead

    private ClipTokenizer(ClipVocabulary vocabulary) => _vocabulary = vocabulary;

    /// <summary>The tokenizer built from OpenAI's <c>bpe_simple_vocab_16e6.txt.gz</c>, embedded in this library. Loaded on first use.</summary>
    public static ClipTokenizer Default => s_default.Value;

    /// <summary>
    /// Loads a diffusers <c>tokenizer/</c> folder's <c>vocab.json</c> and <c>merges.txt</c>. Throws
    /// <see cref="FileNotFoundException"/> or <see cref="InvalidDataException"/> naming the file when one is missing,
    /// malformed, or not a CLIP vocabulary (49408 tokens, start/end at 49406/49407, 48894 merges over known tokens).
    /// </summary>
    public static ClipTokenizer FromFiles(string vocabJson, string mergesTxt)
    {
        ArgumentNullException.ThrowIfNull(vocabJson);
        ArgumentNullException.ThrowIfNull(mergesTxt);
        return new ClipTokenizer(ClipVocabulary.FromHuggingFaceFiles(vocabJson, mergesTxt));
    }

    /// <summary>The token ids of <paramref name="text"/>, without start and end tokens and without truncation.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > MaxTextLength)
            throw new ArgumentException($"The text is {text.Length} characters long; the tokenizer accepts at most {MaxTextLength}.", nameof(text));
        return EncodeCleaned(ClipTextCleaner.Clean(text));
    }

    /// <summary>
    /// Frames <paramref name="prompt"/> for the text encoder: start token, at most <c>maxLength - 2</c> tokens, end
    /// token, then end tokens up to <paramref name="maxLength"/> ids. Tokens past the limit are dropped and reported.
    /// </summary>
    public TokenizedPrompt Tokenize(string prompt, int maxLength = DefaultMaxLength)
    {
        if (maxLength is < 2 or > MaxFramedLength)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"The framed length must be 2..{MaxFramedLength} (start and end tokens included).");
        int[] tokens = Encode(prompt);
        int kept = Math.Min(tokens.Length, maxLength - 2);

        var inputIds = new int[maxLength];
        inputIds[0] = StartToken;
        tokens.AsSpan(0, kept).CopyTo(inputIds.AsSpan(1));
        inputIds.AsSpan(kept + 1).Fill(EndToken);

        var dropped = tokens[kept..];
        string[] droppedTokens = Array.ConvertAll(dropped, TokenString);
        return new TokenizedPrompt(inputIds, tokens.Length, dropped.Length > 0, droppedTokens, Decode(dropped).Trim());
    }

    /// <summary>The vocabulary string of a token id, e.g. 2368 -> "cat&lt;/w&gt;" (&lt;/w&gt; marks a word's end).</summary>
    public string TokenString(int id)
    {
        if ((uint)id >= VocabSize) throw new ArgumentOutOfRangeException(nameof(id), id, $"Token ids are 0..{VocabSize - 1}.");
        return _vocabulary.Tokens[id];
    }

    /// <summary>
    /// The text of a sequence of ids, as <c>SimpleTokenizer.decode</c> gives it: the tokens' bytes decoded as UTF-8
    /// (invalid sequences become U+FFFD) and each <c>&lt;/w&gt;</c> turned into a space. Special tokens appear as
    /// their strings.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
            foreach (char c in TokenString(id))
                bytes.Add((byte)ByteLevelAlphabet.ByteOf(c));
        return Encoding.UTF8.GetString(bytes.ToArray()).Replace("</w>", " ");
    }

    /// <summary>Pre-tokenization and BPE of text that is already cleaned (what <see cref="Encode"/> does after cleanup).</summary>
    internal int[] EncodeCleaned(string cleaned)
    {
        var words = new List<string>();
        ClipPreTokenizer.Split(cleaned, words);
        var ids = new List<int>(words.Count * 2);
        foreach (string word in words) ids.AddRange(EncodeWord(word));
        return ids.ToArray();
    }

    private int[] EncodeWord(string word)
    {
        // simple_tokenizer seeds its BPE cache with the two special strings, so typed out they become the special ids.
        if (word == ClipVocabulary.StartText) return [StartToken];
        if (word == ClipVocabulary.EndText) return [EndToken];
        if (_cache.TryGetValue(word, out int[]? cached)) return cached;

        var ids = new List<int>(word.Length);
        BytePairMerge.Encode(Encoding.UTF8.GetBytes(word), _vocabulary, ids);
        int[] result = ids.ToArray();
        if (Volatile.Read(ref _cachedWords) < MaxCachedWords && _cache.TryAdd(word, result)) Interlocked.Increment(ref _cachedWords);
        return result;
    }
}
