using System.IO.Compression;
using System.Text;
using System.Text.Json;
using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Tests.Tokenization;

public class ClipVocabularyTests
{
    [Fact]
    public void FromFiles_MatchesTheEmbeddedVocabulary()
    {
        var fromFiles = ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, HfTokenizerFolder.MergesTxt);
        for (int id = 0; id < ClipTokenizer.VocabSize; id++)
        {
            Assert.Equal(HfTokenizerFolder.Vocabulary[id], fromFiles.TokenString(id));
            Assert.Equal(HfTokenizerFolder.Vocabulary[id], ClipTokenizer.Default.TokenString(id));
        }
        using var fixture = TokenizerFixtures.Load("simple_tokenizer_port.json");
        foreach (var row in TokenizerFixtures.Rows(fixture))
        {
            string prompt = row.GetProperty("prompt").GetString()!;
            Assert.Equal(TokenizerFixtures.Ids(row, "input_ids"), fromFiles.Tokenize(prompt).InputIds);
        }
    }

    [Fact]
    public void FromFiles_AcceptsCrLfAndExtraMerges()
    {
        string folder = TempFolder();
        string merges = Path.Combine(folder, "merges.txt");
        File.WriteAllText(merges, "#version: 0.2\r\n" + string.Join("\r\n", HfTokenizerFolder.Merges) + "\r\nzz zz\r\n");
        var tokenizer = ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, merges);
        Assert.Equal(ClipTokenizer.Default.Encode("an astronaut riding a horse"), tokenizer.Encode("an astronaut riding a horse"));
    }

    [Fact]
    public void FromFiles_MissingFile_IsNamed()
    {
        string missing = Path.Combine(TempFolder(), "vocab.json");
        var e = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFiles(missing, HfTokenizerFolder.MergesTxt));
        Assert.Contains(missing, e.Message);
        e = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, missing + ".txt"));
        Assert.Contains(missing + ".txt", e.Message);
    }

    public static TheoryData<string, string> BadVocabularies => new()
    {
        { "not json", "not valid JSON" },
        { "[1, 2]", "should be a JSON object" },
        { "{\"a\": \"x\"}", "ids must be integers" },
        { "{\"a\": 1.5}", "ids must be integers" },
        { "{\"a\": 49408}", "ids must be integers" },
        { "{\"a\": 0, \"b\": 0}", "is given to both" },
        { "{\"a\": 0}", "holds 1 tokens" },
    };

    [Theory]
    [MemberData(nameof(BadVocabularies))]
    public void FromFiles_BadVocabJson_IsNamed(string content, string expectedMessage)
    {
        string path = Path.Combine(TempFolder(), "vocab.json");
        File.WriteAllText(path, content);
        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(path, HfTokenizerFolder.MergesTxt));
        Assert.Contains(path, e.Message);
        Assert.Contains(expectedMessage, e.Message);
    }

    [Fact]
    public void FromFiles_VocabularyWithMovedSpecialTokens_IsRejected()
    {
        var vocabulary = (string[])HfTokenizerFolder.Vocabulary.Clone();
        (vocabulary[49406], vocabulary[49405]) = (vocabulary[49405], vocabulary[49406]);
        string path = WriteVocab(vocabulary);
        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(path, HfTokenizerFolder.MergesTxt));
        Assert.Contains("id 49406 should be \"<|startoftext|>\"", e.Message);
    }

    [Fact]
    public void FromFiles_VocabularyWithForeignCharacters_IsRejected()
    {
        var vocabulary = (string[])HfTokenizerFolder.Vocabulary.Clone();
        vocabulary[49405] = "caf\u00e9 au lait"; // a space is no byte-level character
        string path = WriteVocab(vocabulary);
        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(path, HfTokenizerFolder.MergesTxt));
        Assert.Contains(path, e.Message);
        Assert.Contains("U+0020", e.Message);
    }

    public static TheoryData<string, string> BadMerges => new()
    {
        { "", "the first line should be the '#version: 0.2' header" },
        { "i n\nt h\n", "the first line should be the '#version: 0.2' header" },
        { "#version: 0.2\ni n\nt h\n", "holds 2 merges" },
        { "#version: 0.2\ni n t\n", "line 2 should hold one merge" },
        { "#version: 0.2\ni\n", "line 2 should hold one merge" },
        { "#version: 0.2\nq\u00e9 x\n", "which is not in the vocabulary" },
    };

    [Theory]
    [MemberData(nameof(BadMerges))]
    public void FromFiles_BadMergesTxt_IsNamed(string header, string expectedMessage)
    {
        string path = Path.Combine(TempFolder(), "merges.txt");
        bool complete = header.StartsWith("#version", StringComparison.Ordinal) && !expectedMessage.StartsWith("holds");
        File.WriteAllText(path, complete ? header + string.Join("\n", HfTokenizerFolder.Merges) : header);
        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expectedMessage, e.Message);
    }

    [Fact]
    public void FromFiles_DuplicateMerge_IsRejected()
    {
        string path = Path.Combine(TempFolder(), "merges.txt");
        File.WriteAllText(path, "#version: 0.2\n" + HfTokenizerFolder.Merges[0] + "\n" + string.Join("\n", HfTokenizerFolder.Merges));
        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, path));
        Assert.Contains("appears twice", e.Message);
    }

    [Fact]
    public void FromFiles_CorruptedFiles_FailOnlyWithInvalidData()
    {
        // Fuzz: random truncations and byte flips of both files either load or fail with InvalidDataException.
        byte[] vocab = File.ReadAllBytes(HfTokenizerFolder.VocabJson);
        byte[] merges = File.ReadAllBytes(HfTokenizerFolder.MergesTxt);
        var random = new Random(77);
        string folder = TempFolder();
        for (int n = 0; n < 12; n++)
        {
            bool corruptVocab = n % 2 == 0;
            byte[] bytes = (byte[])(corruptVocab ? vocab : merges).Clone();
            if (n % 3 == 0) bytes = bytes[..random.Next(bytes.Length)];
            else for (int k = 0; k < 1 + n; k++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            string path = Path.Combine(folder, $"corrupt{n}");
            File.WriteAllBytes(path, bytes);
            try
            {
                var tokenizer = corruptVocab ? ClipTokenizer.FromFiles(path, HfTokenizerFolder.MergesTxt) : ClipTokenizer.FromFiles(HfTokenizerFolder.VocabJson, path);
                Assert.Equal(ClipTokenizer.StartToken, tokenizer.Tokenize("a cat").InputIds[0]);
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(path, e.Message);
            }
        }
    }

    [Fact]
    public void OpenAiMerges_CorruptedOrShort_FailWithInvalidData()
    {
        var e = Assert.Throws<InvalidDataException>(() => ClipVocabulary.FromOpenAiMerges(new MemoryStream([1, 2, 3, 4, 5]), "bad.gz"));
        Assert.Contains("bad.gz", e.Message);

        var shortFile = new MemoryStream();
        using (var gz = new GZipStream(shortFile, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(Encoding.UTF8.GetBytes("#version\n" + string.Join("\n", HfTokenizerFolder.Merges[..100]) + "\n"));
        shortFile.Position = 0;
        e = Assert.Throws<InvalidDataException>(() => ClipVocabulary.FromOpenAiMerges(shortFile, "short.gz"));
        Assert.Contains("short.gz: holds 100 merges", e.Message);
    }

    private static string WriteVocab(string[] vocabulary)
    {
        var json = new Dictionary<string, int>();
        for (int id = 0; id < vocabulary.Length; id++) json.Add(vocabulary[id], id);
        string path = Path.Combine(TempFolder(), "vocab.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    private static string TempFolder() => TokenizerFixtures.NewTempFolder();
}
