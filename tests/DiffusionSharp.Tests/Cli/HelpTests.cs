using System.CommandLine;
using DiffusionSharp.Cli;
using DiffusionSharp.Cli.Commands;

namespace DiffusionSharp.Tests.Cli;

/// <summary>
/// <c>--help</c> of the root and of every command and subcommand: exit code 0, and every option (its own and those it
/// inherits) listed with all its names and the start of its description.
/// </summary>
public class HelpTests
{
    private static readonly Command[] TopLevel =
    [
        GenerateCommand.Create(TextWriter.Null, TextWriter.Null),
        TokenizeCommand.Create(TextWriter.Null, TextWriter.Null),
        InfoCommand.Create(TextWriter.Null, TextWriter.Null),
        BenchCommand.Create(TextWriter.Null, TextWriter.Null),
    ];

    /// <summary>Every command as its path ("bench ops"), with the options its help must list.</summary>
    private static IEnumerable<(string Path, Command Command, Option[] Options)> Walk(IEnumerable<Command> commands, string prefix, Option[] inherited)
    {
        foreach (var command in commands)
        {
            string path = (prefix + " " + command.Name).Trim();
            Option[] options = [.. inherited, .. command.Options];
            yield return (path, command, options);
            foreach (var sub in Walk(command.Subcommands, path, [.. inherited, .. command.Options.Where(o => o.Recursive)]))
                yield return sub;
        }
    }

    public static TheoryData<string> Commands() => new(Walk(TopLevel, "", []).Select(c => c.Path));

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Root_help_lists_every_command(string flag)
    {
        var r = CliRunner.Run(flag);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Empty(r.Error);
        foreach (var command in TopLevel)
            Assert.Contains(r.OutputLines, l => l.TrimStart().StartsWith(command.Name + " ", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Command_help_lists_every_option_and_alias(string path)
    {
        var (_, command, options) = Walk(TopLevel, "", []).Single(c => c.Path == path);
        var r = CliRunner.Run([.. path.Split(' '), "--help"]);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Empty(r.Error);
        Assert.NotEmpty(options);
        static string[] Words(string line) => line.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries);
        foreach (var option in options)
        {
            string line = Assert.Single(r.OutputLines, l => Words(l).Contains(option.Name));
            foreach (string alias in option.Aliases)
                Assert.Contains(alias, Words(line));
            Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{path} {option.Name} has no description");
            Assert.Contains(option.Description!.Split(' ')[0], line);
        }
        foreach (var argument in command.Arguments)
            Assert.Contains(r.OutputLines, l => l.TrimStart().StartsWith($"<{argument.Name}>", StringComparison.Ordinal));
        foreach (var sub in command.Subcommands)
            Assert.Contains(r.OutputLines, l => l.TrimStart().StartsWith(sub.Name + " ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_parse_error_points_at_the_help_of_the_command_it_is_in()
    {
        var r = CliRunner.Run("bench", "ops", "--repeats", "0");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.EndsWith("(see 'diffusion bench ops --help')", r.SingleErrorLine());
        Assert.Single(r.ErrorLines);

        r = CliRunner.Run("tokenize");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Equal("error: Option '--prompt' is required. (see 'diffusion tokenize --help')", r.SingleErrorLine());

        r = CliRunner.Run("paint");   // two problems: no command, and an unknown word
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("error: Unrecognized command or argument 'paint'. (see 'diffusion --help')", r.ErrorLines);
        Assert.All(r.ErrorLines, l => Assert.EndsWith("(see 'diffusion --help')", l));
    }
}
