using System.CommandLine;
using System.CommandLine.Parsing;
using DiffusionSharp.Cli.Commands;

namespace DiffusionSharp.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>
    /// Parses and runs <paramref name="args"/>, writing results to <paramref name="output"/> and progress and errors to
    /// <paramref name="error"/>; returns the exit code (<see cref="ExitCodes"/>). A parse error prints one line per problem,
    /// pointing at the command's help, and exits with 2.
    /// </summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("diffusion: text-to-image with latent diffusion models (Stable Diffusion 1.x and MobileDiffusion-style), in pure C#.")
        {
            GenerateCommand.Create(output, error),
            TokenizeCommand.Create(output, error),
            InfoCommand.Create(output, error),
            BenchCommand.Create(output, error),
            QuantizeCommand.Create(output, error),
            CacheProfileCommand.Create(output, error),
        };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var path = new List<string> { "--help" };
            for (SymbolResult? r = parse.CommandResult; r is CommandResult { Command: var c } && c != root; r = r.Parent)
                path.Insert(0, c.Name);
            string help = "diffusion " + string.Join(' ', path);
            foreach (var e in parse.Errors) error.WriteLine($"error: {e.Message} (see '{help}')");
            return ExitCodes.Usage;
        }
        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
