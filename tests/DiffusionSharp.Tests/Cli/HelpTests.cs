using System.CommandLine;
using DiffusionSharp.Cli;
using DiffusionSharp.Cli.Commands;

namespace DiffusionSharp.Tests.Cli;

/// <summary><c>--help</c> of the root and of each command: exit code 0, and every option with all its names listed.</summary>
public class HelpTests
{
    private static readonly string[] CommandNames = ["generate", "tokenize", "info"];

    public static TheoryData<string> Commands() => new(CommandNames);

    private static Command Create(string name) => name switch
    {
        "generate" => GenerateCommand.Create(TextWriter.Null, TextWriter.Null),
        "tokenize" => TokenizeCommand.Create(TextWriter.Null, TextWriter.Null),
        "info" => InfoCommand.Create(TextWriter.Null, TextWriter.Null),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a diffusion command"),
    };

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Root_help_lists_every_command(string flag)
    {
        var r = CliRunner.Run(flag);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Empty(r.Error);
        foreach (string command in CommandNames)
            Assert.Contains(r.OutputLines, l => l.TrimStart().StartsWith(command + " ", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Command_help_lists_every_option_and_alias(string name)
    {
        var r = CliRunner.Run(name, "--help");
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Empty(r.Error);
        var command = Create(name);
        Assert.NotEmpty(command.Options);
        foreach (var option in command.Options)
        {
            string line = Assert.Single(r.OutputLines, l => l.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).Contains(option.Name));
            foreach (string alias in option.Aliases)
                Assert.Contains(alias, line.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries));
            Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{name} {option.Name} has no description");
            Assert.Contains(option.Description!.Split(' ')[0], line);
        }
        foreach (var argument in command.Arguments)
            Assert.Contains(r.OutputLines, l => l.TrimStart().StartsWith($"<{argument.Name}>", StringComparison.Ordinal));
    }
}
