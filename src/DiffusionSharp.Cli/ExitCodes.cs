namespace DiffusionSharp.Cli;

/// <summary>Process exit codes of <c>diffusion</c> (documented in docs/CLI.md).</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>Something failed while running (an unexpected error, a write that failed).</summary>
    public const int Failure = 1;
    /// <summary>The command line is wrong: unknown option, invalid value, missing argument.</summary>
    public const int Usage = 2;
    /// <summary>An input file or folder cannot be used (missing, malformed, unsupported model).</summary>
    public const int BadInput = 3;
    /// <summary>Cancelled with Ctrl+C.</summary>
    public const int Cancelled = 130;
}
