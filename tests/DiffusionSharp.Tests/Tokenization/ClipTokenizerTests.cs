using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Tests.Tokenization;

public class ClipTokenizerTests
{
    private static readonly ClipTokenizer Tokenizer = ClipTokenizer.Default;

    [Theory]
    [InlineData("hello world", new[] { 49406, 3306, 1002, 49407 })] // the ids HF's CLIPTokenizer examples print
    [InlineData("a photo of a cat", new[] { 49406, 320, 1125, 539, 320, 2368, 49407 })]
    public void KnownPrompts_HaveThePublishedIds(string prompt, int[] expected) =>
        Assert.Equal(expected, Tokenizer.Tokenize(prompt).InputIds[..expected.Length]);

    [Fact]
    public void PhotoOfACat_HasThePublishedIds()
    {
        var prompt = Tokenizer.Tokenize("a photo of a cat");
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407], prompt.InputIds[..7]);
        Assert.All(prompt.InputIds[7..], id => Assert.Equal(ClipTokenizer.EndToken, id));
        Assert.Equal(77, prompt.InputIds.Length);
        Assert.Equal(5, prompt.TokenCount);
        Assert.False(prompt.Truncated);
        Assert.Empty(prompt.DroppedTokens);
        Assert.Equal("", prompt.DroppedText);
        Assert.Equal(75, prompt.MaxTokens);
    }

    [Fact]
    public void Vocabulary_EndsWithTheSpecialTokens()
    {
        Assert.Equal("<|startoftext|>", Tokenizer.TokenString(ClipTokenizer.StartToken));
        Assert.Equal("<|endoftext|>", Tokenizer.TokenString(ClipTokenizer.EndToken));
        Assert.Equal("cat</w>", Tokenizer.TokenString(2368));
        Assert.Equal("!", Tokenizer.TokenString(0));
        Assert.Equal("!</w>", Tokenizer.TokenString(256));
        Assert.Equal("in", Tokenizer.TokenString(512)); // the file's first merge, "i n"
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.TokenString(ClipTokenizer.VocabSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.TokenString(-1));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t\n  ")]
    [InlineData("\u0345")]
    public void EmptyPrompt_IsStartThenEndPadding(string prompt)
    {
        var tokenized = Tokenizer.Tokenize(prompt);
        Assert.Equal(ClipTokenizer.StartToken, tokenized.InputIds[0]);
        Assert.All(tokenized.InputIds[1..], id => Assert.Equal(ClipTokenizer.EndToken, id));
        Assert.Equal(0, tokenized.TokenCount);
        Assert.False(tokenized.Truncated);
    }

    [Fact]
    public void LongPrompt_KeepsTheFirst75TokensAndReportsTheRest()
    {
        string prompt = string.Join(", ", Enumerable.Range(0, 40).Select(i => $"detail {i}"));
        int[] all = Tokenizer.Encode(prompt);
        var tokenized = Tokenizer.Tokenize(prompt);

        Assert.True(all.Length > 75);
        Assert.Equal(all.Length, tokenized.TokenCount);
        Assert.True(tokenized.Truncated);
        Assert.Equal(77, tokenized.InputIds.Length);
        Assert.Equal(ClipTokenizer.StartToken, tokenized.InputIds[0]);
        Assert.Equal(all[..75], tokenized.InputIds[1..76]);
        Assert.Equal(ClipTokenizer.EndToken, tokenized.InputIds[76]);
        Assert.Equal(all[75..].Select(Tokenizer.TokenString), tokenized.DroppedTokens);
        Assert.Equal(Tokenizer.Decode(all[75..]).Trim(), tokenized.DroppedText);
        Assert.EndsWith("detail 3 9", tokenized.DroppedText); // digits are single words, so decode spaces them
    }

    [Fact]
    public void Truncation_StartsOneTokenPastTheLimit()
    {
        string exactly75 = string.Join(" ", Enumerable.Repeat("cat", 75));
        Assert.False(Tokenizer.Tokenize(exactly75).Truncated);
        Assert.Equal(ClipTokenizer.EndToken, Tokenizer.Tokenize(exactly75).InputIds[76]);
        Assert.Equal(2368, Tokenizer.Tokenize(exactly75).InputIds[75]);

        var over = Tokenizer.Tokenize(exactly75 + " dog");
        Assert.True(over.Truncated);
        Assert.Equal(76, over.TokenCount);
        Assert.Equal(["dog</w>"], over.DroppedTokens);
        Assert.Equal("dog", over.DroppedText);
    }

    [Fact]
    public void MaxLength_FramesToTheRequestedLength()
    {
        Assert.Equal([ClipTokenizer.StartToken, ClipTokenizer.EndToken], Tokenizer.Tokenize("a cat", 2).InputIds);
        Assert.Equal([49406, 320, 49407], Tokenizer.Tokenize("a cat", 3).InputIds);
        Assert.Equal(154, Tokenizer.Tokenize("a cat", 154).InputIds.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Tokenize("a cat", 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Tokenize("a cat", int.MaxValue));
    }

    [Theory]
    [InlineData("don't", new[] { 847, 713 })]           // don + 't
    [InlineData("it's", new[] { 585, 568 })]            // it + 's
    [InlineData("<|endoftext|>", new[] { 49407 })]     // typed special tokens become the special ids
    [InlineData("<|startoftext|>", new[] { 49406 })]
    public void Encode_GivesClipIds(string text, int[] expected) => Assert.Equal(expected, Tokenizer.Encode(text));

    [Fact]
    public void Digits_AreSingleWords()
    {
        string[] tokens = Tokenizer.Encode("1024x768").Select(Tokenizer.TokenString).ToArray();
        Assert.Equal(["1</w>", "0</w>", "2</w>", "4</w>", "x</w>", "7</w>", "6</w>", "8</w>"], tokens);
    }

    [Fact]
    public void Decode_InvertsEncodeUpToWordBoundaries()
    {
        Assert.Equal("a photo of a cat ", Tokenizer.Decode(Tokenizer.Encode("A  Photo of a CAT")));
        Assert.Equal("<|startoftext|>a cat <|endoftext|><|endoftext|>", Tokenizer.Decode(Tokenizer.Tokenize("a cat", 5).InputIds));
        foreach (string text in new[] { "😺🎩 👨‍👩‍👧", "一只可爱的猫", "привет мир", "straße", "é" })
            Assert.Equal(text.Replace(" ", ""), Tokenizer.Decode(Tokenizer.Encode(text)).Replace(" ", ""));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Decode([1, ClipTokenizer.VocabSize]));
    }

    [Fact]
    public void Decode_ReplacesIncompleteUtf8()
    {
        // "é" is the bytes C3 A9. The byte-level token of C3 alone is "Ã", which decodes, as Python's
        // bytes.decode("utf-8", errors="replace") does, to U+FFFD; with "©</w>" (A9) after it, to "é ".
        int leadByte = Enumerable.Range(0, 256).Single(id => Tokenizer.TokenString(id) == "\u00c3");
        int trailByte = Enumerable.Range(256, 256).Single(id => Tokenizer.TokenString(id) == "\u00a9</w>");
        Assert.Equal("\ufffd", Tokenizer.Decode([leadByte]));
        Assert.Equal("\ufffd\ufffd", Tokenizer.Decode([leadByte, leadByte]));
        Assert.Equal("é ", Tokenizer.Decode([leadByte, trailByte]));
    }

    [Fact]
    public void BadArguments_AreRejectedWithTheirNames()
    {
        Assert.Throws<ArgumentNullException>(() => Tokenizer.Encode(null!));
        Assert.Throws<ArgumentNullException>(() => Tokenizer.Tokenize(null!));
        Assert.Throws<ArgumentNullException>(() => Tokenizer.Decode(null!));
        var tooLong = Assert.Throws<ArgumentException>(() => Tokenizer.Encode(new string('a', ClipTokenizer.MaxTextLength + 1)));
        Assert.Equal("text", tooLong.ParamName);
    }

    [Fact]
    public void ConcurrentUse_GivesTheSameIdsAsSequentialUse()
    {
        using var fixture = TokenizerFixtures.Load("simple_tokenizer_port.json");
        string[] prompts = TokenizerFixtures.Rows(fixture).Select(r => r.GetProperty("prompt").GetString()!).ToArray();
        var fresh = ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, HfTokenizerFolder.MergesTxt); // empty cache
        var expected = prompts.Select(p => Tokenizer.Tokenize(p).InputIds).ToArray();
        var actual = new int[prompts.Length * 8][];
        Parallel.For(0, actual.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 },
            i => actual[i] = fresh.Tokenize(prompts[i % prompts.Length]).InputIds);
        for (int i = 0; i < actual.Length; i++) Assert.Equal(expected[i % prompts.Length], actual[i]);
    }

    [Fact]
    public void RandomText_EncodesEveryByteOfTheCleanedText()
    {
        // Fuzz: byte-level BPE is lossless, so the tokens' text is the cleaned text minus what the pre-tokenizer skips
        // (whitespace, U+0345). Inputs mix letters, marks, entities, controls, surrogates (paired and lone), emoji.
        string[] pool =
        [
            "a", "Z", "é", "ß", "Σ", "İ", "ﬁ", "Ａ", "中", "ж", "\u0301", "\u0345", "ſ", "1", "²", "½", " ", "\t", "\n", "\r",
            "\u00a0", "\u3000", "\u200b", "'", "'s", "&", "&amp;", "&#39;", "&#x", ";", "<", "<|endoftext|>", "\u001b[1m",
            "\u0000", "\u0093", "\u2019", "\u201c", "😺", "\ud83d", "\ude3a", "\ufeff", "\u2028", "!", ".", "-", "_",
        ];
        var random = new Random(1234);
        for (int n = 0; n < 2000; n++)
        {
            string text = string.Concat(Enumerable.Range(0, random.Next(0, 24)).Select(_ => pool[random.Next(pool.Length)]));
            int[] ids = Tokenizer.Encode(text);
            Assert.All(ids, id => Assert.InRange(id, 0, ClipTokenizer.VocabSize - 1));
            string cleaned = ClipTextCleaner.Clean(text);
            string kept = string.Concat(cleaned.Where(c => c != ' ' && c != '\u0345'));
            Assert.True(kept == Tokenizer.Decode(ids).Replace(" ", ""), $"{TokenizerFixtures.Show(text)} cleaned to {TokenizerFixtures.Show(cleaned)}");
        }
    }
}
