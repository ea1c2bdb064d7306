using System.Text;
using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Tests.Tokenization;

/// <summary>
/// <see cref="BytePairMerge"/> (a priority queue over a linked list) against <see cref="Reference"/>, a literal port
/// of <c>SimpleTokenizer.bpe</c>: find the lowest-ranked adjacent pair, merge all its occurrences left to right,
/// repeat. Words are built to make merges compete: the order of merges, not only the merge table, decides the result.
/// </summary>
public class BytePairMergeTests
{
    /// <summary>A merge table as both sides see it: ours (ids) and the reference's ((left, right) -> rank).</summary>
    private sealed record Model(ClipVocabulary Vocabulary, Dictionary<(string, string), int> Ranks)
    {
        public static Model Of(string mergesTxt, IEnumerable<string> merges) => new(
            ClipVocabulary.FromHuggingFaceFiles(HfTokenizerFolder.VocabJson, mergesTxt),
            merges.Select((line, rank) => (Pair: line.Split(' '), rank)).ToDictionary(m => (m.Pair[0], m.Pair[1]), m => m.rank));
    }

    private static readonly Lazy<Model> Clip = new(() => Model.Of(HfTokenizerFolder.MergesTxt, HfTokenizerFolder.Merges));

    [Fact]
    public void WordsOfVocabularyPieces_MergeAsTheReferenceDoes()
    {
        // Concatenations of token strings: their boundaries are where lower-ranked merges compete with the pieces.
        var random = new Random(42);
        string[] vocabulary = HfTokenizerFolder.Vocabulary;
        for (int n = 0; n < 20000; n++)
        {
            var word = new StringBuilder();
            for (int k = random.Next(1, 6); k > 0; k--) word.Append(vocabulary[512 + random.Next(48894)].Replace("</w>", ""));
            AssertSameAsReference(Clip.Value, ByteLevelDecode(word.ToString()));
        }
    }

    [Theory]
    [InlineData("aeiou", 1)]
    [InlineData("ab", 1)]
    [InlineData("lo", 2)]
    [InlineData("esnt", 1)]
    [InlineData("0123456789", 1)]
    public void RandomWordsOverSmallAlphabets_MergeAsTheReferenceDoes(string alphabet, int runLength)
    {
        var random = new Random(alphabet.Length * 31 + runLength);
        for (int n = 0; n < 5000; n++)
        {
            var word = new StringBuilder();
            for (int k = random.Next(1, 40); k > 0; k--) word.Append(alphabet[random.Next(alphabet.Length)], runLength);
            AssertSameAsReference(Clip.Value, Encoding.UTF8.GetBytes(word.ToString()));
        }
    }

    [Fact]
    public void RandomBytes_MergeAsTheReferenceDoes()
    {
        var random = new Random(7);
        for (int n = 0; n < 5000; n++)
        {
            var word = new byte[random.Next(1, 24)];
            random.NextBytes(word);
            AssertSameAsReference(Clip.Value, word);
        }
        for (int length = 1; length <= 300; length += 37)
        {
            AssertSameAsReference(Clip.Value, Enumerable.Repeat((byte)'a', length).ToArray());
            AssertSameAsReference(Clip.Value, Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("la", length))));
        }
    }

    [Fact]
    public void MergeListedBeforeItsInputExists_WaitsForTheCurrentMergeToFinish()
    {
        // In CLIP's list every merge comes after the merge that makes its input, so a pair created by merging ranks
        // after it. A merges.txt may list them otherwise. Moving "it i" to the front: in "ititit", openai's loop merges
        // both "i t" before it considers "it i", giving "it iti t</w>"; merging the created pair at once would start
        // with "iti".
        string[] merges = [HfTokenizerFolder.Merges[248], .. HfTokenizerFolder.Merges[..248], .. HfTokenizerFolder.Merges[249..]];
        Assert.Equal("it i", merges[0]);
        Assert.Equal("i t", merges[18]);
        string path = Path.Combine(TokenizerFixtures.NewTempFolder(), "merges.txt");
        File.WriteAllText(path, "#version: 0.2\n" + string.Join("\n", merges) + "\n");
        var model = Model.Of(path, merges);

        Assert.Equal(["it", "iti", "t</w>"], Reference(model, Encoding.UTF8.GetBytes("ititit")));
        AssertSameAsReference(model, Encoding.UTF8.GetBytes("ititit"));
        var random = new Random(248);
        for (int n = 0; n < 3000; n++)
        {
            var word = new StringBuilder();
            for (int k = random.Next(1, 12); k > 0; k--) word.Append(random.Next(3) switch { 0 => "it", 1 => "i", _ => "t" });
            AssertSameAsReference(model, Encoding.UTF8.GetBytes(word.ToString()));
        }
    }

    private static void AssertSameAsReference(Model model, byte[] word)
    {
        var ids = new List<int>();
        BytePairMerge.Encode(word, model.Vocabulary, ids);
        string[] actual = ids.Select(id => model.Vocabulary.Tokens[id]).ToArray();
        string[] expected = Reference(model, word);
        Assert.True(expected.SequenceEqual(actual),
            $"BPE of bytes {Convert.ToHexString(word)}: reference [{string.Join(' ', expected)}], got [{string.Join(' ', actual)}]");
    }

    /// <summary>SimpleTokenizer.bpe, line for line, on the byte-level characters of <paramref name="bytes"/>.</summary>
    private static string[] Reference(Model model, byte[] bytes)
    {
        var word = bytes.Select(b => ByteLevel[b].ToString()).ToList();
        word[^1] += "</w>";
        while (word.Count > 1)
        {
            var pairs = word.Zip(word.Skip(1)).Distinct();
            var bigram = pairs.MinBy(pair => model.Ranks.GetValueOrDefault(pair, int.MaxValue));
            if (!model.Ranks.ContainsKey(bigram)) break;
            var (first, second) = bigram;
            var merged = new List<string>();
            int i = 0;
            while (i < word.Count)
            {
                int j = word.IndexOf(first, i);
                if (j < 0)
                {
                    merged.AddRange(word.Skip(i));
                    break;
                }
                merged.AddRange(word.Skip(i).Take(j - i));
                i = j;
                if (i < word.Count - 1 && word[i + 1] == second)
                {
                    merged.Add(first + second);
                    i += 2;
                }
                else
                {
                    merged.Add(word[i]);
                    i++;
                }
            }
            word = merged;
        }
        return word.ToArray();
    }

    /// <summary>bytes_to_unicode, spelled out again: printable Latin-1 bytes stand for themselves, the rest map to U+0100...</summary>
    private static readonly char[] ByteLevel = BuildByteLevel();

    private static char[] BuildByteLevel()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE ? (char)b : (char)next++;
        return map;
    }

    private static byte[] ByteLevelDecode(string symbols) => symbols.Select(c => (byte)Array.IndexOf(ByteLevel, c)).ToArray();
}
