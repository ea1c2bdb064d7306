using BenchmarkDotNet.Running;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- quick [threads] [filter]`: the in-process kernel report (peak, then each kernel as a fraction of it).
/// `-- conv-choice`: implicit GEMM vs Winograd per 3x3 convolution shape, one thread by CPU time.
/// `-- vae-winograd MODEL [latent sizes]`: the VAE decode with and without Winograd, same process, CPU time.
/// `-- nchw`: NCHW unfold + GEMM against the NHWC implicit GEMM on SD conv shapes (the layout decision).
/// `-- first-touch [MiB]`: the cost of a fresh page against clearing a resident one (why buffers are reused).
/// `-- quant-split [threads]`: a W4A4 layer's time split into activation quantization, the branch and the integer GEMM.
/// Anything else goes to BenchmarkDotNet (e.g. `-- --filter *Gemm*`).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick") QuickReport.Run(args);
        else if (args.Length > 0 && args[0] == "conv-choice") QuickReport.RunConvChoice();
        else if (args.Length > 0 && args[0] == "vae-winograd") VaeWinogradReport.Run(args);
        else if (args.Length > 0 && args[0] == "nchw") NchwComparison.Run();
        else if (args.Length > 0 && args[0] == "quant-split") QuantSplitReport.Run(args);
        else if (args.Length > 0 && args[0] == "quant-error-split") QuantErrorSplit.Run(args);
        else if (args.Length > 0 && args[0] == "first-touch") FirstTouchReport.Run(args);
        else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
