using System.Text.Json;

namespace DiffusionSharp.Tests.Tokenization;

/// <summary>Reads the JSON files tools/fixtures/tokenizer_reference.py writes into tests/fixtures/tokenizer/.</summary>
internal static class TokenizerFixtures
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "tokenizer");

    private static readonly Lazy<string> s_scratch = new(() =>
    {
        string root = Path.Combine(Path.GetTempPath(), $"diffusionsharp-tokenizer-tests-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => System.IO.Directory.Delete(root, recursive: true);
        return root;
    });

    /// <summary>A new empty folder under this test run's scratch folder, which is deleted when the run ends.</summary>
    public static string NewTempFolder()
    {
        string folder = Path.Combine(s_scratch.Value, Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(folder);
        return folder;
    }

    public static string PathOf(string fileName) => Path.Combine(Directory, fileName);

    public static JsonDocument Load(string fileName)
    {
        string path = PathOf(fileName);
        Assert.True(File.Exists(path), $"Missing fixture {path}; regenerate with tools/fixtures/tokenizer_reference.py.");
        return JsonDocument.Parse(File.ReadAllText(path));
    }

    public static IEnumerable<JsonElement> Rows(JsonDocument document) => document.RootElement.GetProperty("prompts").EnumerateArray();

    public static int[] Ids(JsonElement row, string property) => row.GetProperty(property).EnumerateArray().Select(e => e.GetInt32()).ToArray();

    public static string Show(string text) => JsonSerializer.Serialize(text);

    /// <summary>The [input, expected] pairs of one section of python_text.json.</summary>
    public static IEnumerable<(string Input, string Expected)> Pairs(string section)
    {
        using var document = Load("python_text.json");
        return document.RootElement.GetProperty(section).EnumerateArray()
            .Select(pair => (pair[0].GetString()!, pair[1].GetString()!)).ToArray();
    }
}
