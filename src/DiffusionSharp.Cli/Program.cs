using System.CommandLine;

namespace DiffusionSharp.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("diffusion: text-to-image with latent diffusion models, in pure C#.");
        return root.Parse(args).Invoke();
    }
}
