using DiffusionSharp.Cli;

namespace DiffusionSharp.Tests.Cli;

/// <summary><c>diffusion tokenize</c>: ids as OpenAI's CLIP tokenizer gives them (the ids below are its output).</summary>
public class TokenizeCommandTests
{
    [Fact]
    public void Prints_the_ids_with_start_and_end_tokens_on_one_line()
    {
        var r = CliRunner.Run("tokenize", "-p", "a photo of a cat");
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Equal("49406 320 1125 539 320 2368 49407" + Environment.NewLine, r.Output);
        Assert.Empty(r.Error);
    }

    [Fact]
    public void Verbose_shows_each_token_string_and_the_count_against_the_limit()
    {
        var r = CliRunner.Run("tokenize", "-p", "a photo of a cat", "--verbose");
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        string[] lines = r.OutputLines;
        Assert.Equal("49406 320 1125 539 320 2368 49407", lines[0]);
        string[][] rows = lines[1..^1].Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
        Assert.Equal(
        [
            ["49406", "<|startoftext|>"], ["320", "a</w>"], ["1125", "photo</w>"], ["539", "of</w>"], ["320", "a</w>"],
            ["2368", "cat</w>"], ["49407", "<|endoftext|>"],
        ], rows);
        Assert.Equal("5 of 75 tokens", lines[^1]);
    }

    [Fact]
    public void Verbose_says_how_many_tokens_a_long_prompt_loses()
    {
        string prompt = string.Join(' ', Enumerable.Repeat("cat", 80));
        var r = CliRunner.Run("tokenize", "-p", prompt, "-v");
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Equal(82, r.OutputLines[0].Split(' ').Length);
        Assert.Equal("80 of 75 tokens: 5 past the limit would be dropped", r.OutputLines[^1]);
    }
}
