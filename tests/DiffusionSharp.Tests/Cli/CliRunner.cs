using DiffusionSharp.Cli;

namespace DiffusionSharp.Tests.Cli;

/// <summary>What one in-process run of <c>diffusion</c> returned and printed.</summary>
internal sealed record CliResult(int ExitCode, string Output, string Error)
{
    public string[] OutputLines => Lines(Output);

    public string[] ErrorLines => Lines(Error);

    /// <summary>
    /// The one "error: ..." line a failing run must print: exactly one, and no stack trace (those are for --verbose).
    /// </summary>
    public string SingleErrorLine()
    {
        Assert.DoesNotContain(ErrorLines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        return Assert.Single(ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal));
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
}

/// <summary>Runs the CLI in-process through <see cref="Program.Run"/>, capturing stdout and stderr.</summary>
internal static class CliRunner
{
    public static CliResult Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = Program.Run(args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }
}
