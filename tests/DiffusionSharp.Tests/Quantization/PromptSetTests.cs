using DiffusionSharp.IO;
using DiffusionSharp.Quantization;

namespace DiffusionSharp.Tests.Quantization;

public sealed class PromptSetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("prompts").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Text_lines_get_their_index_as_seed_and_skip_comments()
    {
        var p = PromptSet.Read(Write("p.txt", "# calibration\na cat\n\n  a dog on a red background  \n"));
        Assert.Equal([new SeededPrompt("a cat", 0, "0000.png"), new SeededPrompt("a dog on a red background", 1, "0001.png")], p);
    }

    [Fact]
    public void Json_entries_keep_seed_and_file()
    {
        var p = PromptSet.Read(Write("p.json", """[{"prompt": "a", "seed": 42, "file": "x-1.png", "emoji": 3}, {"prompt": "b"}]"""));
        Assert.Equal([new SeededPrompt("a", 42, "x-1.png"), new SeededPrompt("b", 1, "0001.png")], p);
    }

    [Theory]
    [InlineData("p.json", "{\"prompt\": 1}", "JSON array")]
    [InlineData("p.json", "[{\"seed\": 1}]", "no \"prompt\"")]
    [InlineData("p.json", "[{\"prompt\": \"a\", \"file\": \"../x.png\"}]", "plain NAME.png")]
    [InlineData("p.json", "[{\"prompt\": ", "not valid JSON")]
    [InlineData("p.txt", "# only a comment\n", "no prompts")]
    public void Bad_files_are_refused_naming_the_file(string name, string text, string expected)
    {
        string path = Write(name, text);
        var e = Assert.Throws<FileFormatException>(() => PromptSet.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }
}
