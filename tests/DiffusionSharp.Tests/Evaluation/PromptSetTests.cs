using System.Text;
using DiffusionSharp.Evaluation;
using DiffusionSharp.IO;
using DiffusionSharp.Tests.IO;

namespace DiffusionSharp.Tests.Evaluation;

/// <summary>Prompt files of cache-profile and quantize: text lines with consecutive seeds, or evaluate.py's JSON list; bad files are named.</summary>
public sealed class PromptSetTests : IDisposable
{
    private readonly TempFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Text_files_give_one_prompt_per_line_with_consecutive_seeds()
    {
        string path = _scratch.Write("p.txt", Encoding.UTF8.GetBytes("# comment\na cat\n\n  a dog  \r\nsushi\n"));
        var prompts = PromptSet.Read(path, baseSeed: 10);
        Assert.Equal([new("a cat", 10, "", "0000.png"), new("a dog", 11, "", "0001.png"), new SeededPrompt("sushi", 12, "", "0002.png")], prompts);
    }

    [Fact]
    public void Json_files_keep_their_seeds_and_file_names()
    {
        string path = _scratch.Write("p.json", Encoding.UTF8.GetBytes(
            """[{"set": "heldout_pairs", "file": "h-0000.png", "emoji": 0, "colour": 9, "seed": 123, "prompt": "grinning face on a brown background"},""" +
            """ {"prompt": "x", "negative_prompt": "blurry"}]"""));
        var prompts = PromptSet.Read(path, baseSeed: 5);
        Assert.Equal([new("grinning face on a brown background", 123, "", "h-0000.png"), new SeededPrompt("x", 6, "blurry", "0001.png")], prompts);
    }

    [Theory]
    [InlineData("{}", "expected a JSON list")]
    [InlineData("[{\"seed\": 1}]", "entry 0: \"prompt\" must be a string")]
    [InlineData("[{\"prompt\": \"a\", \"seed\": -1}]", "\"seed\" must be a whole number >= 0")]
    [InlineData("[{\"prompt\": \"a\", \"file\": \"../x.png\"}]", "plain .png file name")]
    [InlineData("[{\"prompt\": \"a\", \"file\": \"x.jpg\"}]", "plain .png file name")]
    [InlineData("[{\"prompt\": \"a\", \"file\": \"x.png\"}, {\"prompt\": \"b\", \"file\": \"X.png\"}]", "appears twice")]
    [InlineData("[]", "holds no prompt")]
    [InlineData("[{\"prompt\": ", "not valid JSON")]
    public void Bad_json_prompt_files_are_named(string json, string message)
    {
        string path = _scratch.Write("bad.json", Encoding.UTF8.GetBytes(json));
        var e = Assert.Throws<FileFormatException>(() => PromptSet.Read(path));
        Assert.Contains(message, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void An_empty_text_file_and_a_missing_file_are_refused()
    {
        Assert.Throws<FileFormatException>(() => PromptSet.Read(_scratch.Write("e.txt", Encoding.UTF8.GetBytes("# only\n\n"))));
        Assert.Throws<FileNotFoundException>(() => PromptSet.Read(_scratch.File("none.txt")));
    }
}
