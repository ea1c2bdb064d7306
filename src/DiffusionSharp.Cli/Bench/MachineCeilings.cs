using DiffusionSharp.Kernels;

namespace DiffusionSharp.Cli.Bench;

/// <summary>
/// This machine's ceilings measured with <see cref="MachinePeak"/>: fp32 FMA throughput and streaming (triad) bandwidth,
/// on the benchmark's thread count and on one thread. Each is the best of many short runs (25 ms of FMA, one pass over
/// 3 x 64 MB), the same regime as the kernel timings compared with it: on a shared machine a short run catches a quiet
/// moment about as often as a kernel call does, which skews the ratio less than one long run would (it still swings).
/// </summary>
public sealed record MachineCeilings(double FmaGflops, double FmaGflops1Thread, double TriadGBps, double TriadGBps1Thread)
{
    private static readonly TimeSpan FmaRunTime = TimeSpan.FromMilliseconds(25);
    private const int Repeats = 12;
    private const int TriadMegabytes = 64;

    public static MachineCeilings NotMeasured { get; } = new(0, 0, 0, 0);

    public static MachineCeilings Measure(int threads)
    {
        double fma1 = MachinePeak.FmaGflops(1, FmaRunTime, Repeats);
        double fma = threads == 1 ? fma1 : MachinePeak.FmaGflops(threads, FmaRunTime, Repeats);
        double triad1 = MachinePeak.TriadGBps(1, TriadMegabytes, Repeats);
        double triad = threads == 1 ? triad1 : MachinePeak.TriadGBps(threads, TriadMegabytes, Repeats);
        return new MachineCeilings(fma, fma1, triad, triad1);
    }
}
