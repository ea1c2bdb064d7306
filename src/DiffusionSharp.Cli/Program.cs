using System.CommandLine;
using DiffusionSharp.Cli.Commands;

namespace DiffusionSharp.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Parses and runs <paramref name="args"/>; a parse error prints one line per problem and exits with 2.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("diffusion: text-to-image with latent diffusion models (Stable Diffusion 1.x and MobileDiffusion-style), in pure C#.")
        {
            GenerateCommand.Create(output, error),
            TokenizeCommand.Create(output, error),
            InfoCommand.Create(output, error),
            BenchCommand.Create(output, error),
        };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) error.WriteLine($"error: {e.Message}");
            error.WriteLine("Run 'diffusion --help' or 'diffusion <command> --help' for the options.");
            return ExitCodes.Usage;
        }
        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
