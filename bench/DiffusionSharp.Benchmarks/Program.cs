using BenchmarkDotNet.Running;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- quick [threads] [filter]`: the in-process kernel report (peak, then each kernel as a fraction of it).
/// Anything else goes to BenchmarkDotNet (e.g. `-- --filter *Gemm*`).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick") QuickReport.Run(args);
        else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
