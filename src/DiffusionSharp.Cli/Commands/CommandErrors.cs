using DiffusionSharp.IO;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Pipeline;

namespace DiffusionSharp.Cli.Commands;

/// <summary>Turns exceptions into one clear line on stderr and an exit code; stack traces only with --verbose.</summary>
public static class CommandErrors
{
    /// <summary>Runs a command's body with Ctrl+C wired to its cancellation token; errors become one line and an exit code.</summary>
    public static int Run(TextWriter error, bool verbose, Action<CancellationToken> body)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            body(cts.Token);
            return ExitCodes.Success;
        }
        catch (Exception e)
        {
            return Report(e, error, verbose);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    public static int Report(Exception e, TextWriter error, bool verbose)
    {
        (int code, string message) = e switch
        {
            OperationCanceledException => (ExitCodes.Cancelled, "cancelled"),
            InvalidSettingException s => (ExitCodes.Usage, s.Message),
            ModelLoadException m => (ExitCodes.BadInput, m.Message),
            FileFormatException f => (ExitCodes.BadInput, f.Message),
            FileNotFoundException f => (ExitCodes.BadInput, f.Message),
            DirectoryNotFoundException d => (ExitCodes.BadInput, d.Message),
            UnauthorizedAccessException u => (ExitCodes.Failure, u.Message),
            Sampling.NonFiniteModelOutputException n => (ExitCodes.Failure, n.Message),
            IOException io => (ExitCodes.Failure, io.Message),
            _ => (ExitCodes.Failure, $"unexpected error: {e.GetType().Name}: {e.Message}"),
        };
        error.WriteLine($"error: {message}");
        if (verbose && code != ExitCodes.Cancelled) error.WriteLine(e.ToString());
        return code;
    }
}
