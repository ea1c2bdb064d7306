using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace DiffusionSharp.Tests.Tokenization;

/// <summary>
/// A diffusers <c>tokenizer/</c> folder (vocab.json, merges.txt) written once per test run into a temporary folder,
/// from the embedded OpenAI merges file, the way tools/fixtures/tokenizer_reference.py writes it (the layout of
/// openai/clip-vit-large-patch14): 256 byte characters, the same with &lt;/w&gt;, 48894 merges joined, then the two
/// special tokens. Too large (1.5 MB) to commit as a fixture.
/// </summary>
internal static class HfTokenizerFolder
{
    private sealed record Folder(string Path, string[] Merges, string[] Vocabulary);

    private static readonly Lazy<Folder> s_folder = new(Write);

    public static string VocabJson => Path.Combine(s_folder.Value.Path, "vocab.json");

    public static string MergesTxt => Path.Combine(s_folder.Value.Path, "merges.txt");

    /// <summary>The merges.txt lines after the header, in rank order.</summary>
    public static string[] Merges => s_folder.Value.Merges;

    /// <summary>The vocabulary in id order.</summary>
    public static string[] Vocabulary => s_folder.Value.Vocabulary;

    private static Folder Write()
    {
        string folder = TokenizerFixtures.NewTempFolder();

        var merges = new List<string>();
        using (var gz = new GZipStream(typeof(DiffusionSharp.Tokenization.ClipTokenizer).Assembly
                   .GetManifestResourceStream("DiffusionSharp.Resources.clip.bpe_simple_vocab_16e6.txt.gz")!, CompressionMode.Decompress))
        using (var reader = new StreamReader(gz))
        {
            reader.ReadLine();
            while (merges.Count < 48894) merges.Add(reader.ReadLine()!);
        }

        // bytes_to_unicode, spelled out again here.
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 12)).Concat(Enumerable.Range(0xAE, 82)).ToList();
        var chars = new List<string>(printable.Select(b => ((char)b).ToString()));
        int next = 256;
        for (int b = 0; b < 256; b++) if (!printable.Contains(b)) chars.Add(((char)next++).ToString());
        var vocabulary = chars.Concat(chars.Select(c => c + "</w>")).Concat(merges.Select(m => m.Replace(" ", "")))
            .Append("<|startoftext|>").Append("<|endoftext|>").ToArray();

        var json = new Dictionary<string, int>();
        for (int id = 0; id < vocabulary.Length; id++) json.Add(vocabulary[id], id);
        File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(json), new UTF8Encoding(false));
        File.WriteAllText(Path.Combine(folder, "merges.txt"), "#version: 0.2\n" + string.Join("\n", merges) + "\n", new UTF8Encoding(false));
        return new Folder(folder, merges.ToArray(), vocabulary);
    }
}
