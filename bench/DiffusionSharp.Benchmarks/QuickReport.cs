using System.Diagnostics;
using System.Globalization;
using DiffusionSharp.Kernels;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- quick [threads]`: measures the machine's FMA and bandwidth ceilings, then each SD 1.5 kernel
/// shape with 1 and N threads, in the same process, and prints GFLOP/s (GB/s for memory-bound ops) and the fraction of
/// the ceiling. Best of several runs; on a shared machine the ratios are what to compare, not the absolute figures.
/// </summary>
public static class QuickReport
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : Environment.ProcessorCount;
        string? filter = args.Length > 2 ? args[2] : null;
        Console.WriteLine($"ISA {KernelSettings.BestIsa}, {Environment.ProcessorCount} processors, {threads} threads, load {LoadAverage()}");
        double fma1 = MachinePeak.FmaGflops(1, TimeSpan.FromMilliseconds(300));
        double fmaN = MachinePeak.FmaGflops(threads, TimeSpan.FromMilliseconds(300));
        double bw1 = MachinePeak.TriadGBps(1, 64);
        double bwN = MachinePeak.TriadGBps(threads, 64);
        Console.WriteLine($"peak: FMA {fma1:F0} GFLOP/s (1 thread), {fmaN:F0} GFLOP/s ({threads}); triad {bw1:F1} GB/s (1), {bwN:F1} GB/s ({threads})");
        Console.WriteLine($"{"kernel",-36} {"1 thread",22} {threads + " threads",22}");
        foreach (var make in KernelCases.Sd15())
        {
            using var c = make();
            if (filter != null && !c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            string one = Measure(c, 1, fma1, bw1), many = Measure(c, threads, fmaN, bwN);
            Console.WriteLine($"{c.Name,-36} {one,22} {many,22}");
        }
    }

    private static string Measure(KernelCase c, int threads, double peakFlops, double peakBandwidth)
    {
        using var scheduler = new ThreadScheduler(threads);
        using var scope = scheduler.Use();
        c.Run();
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < 20 && (i < 3 || total.Elapsed.TotalSeconds < 2); i++)
        {
            long start = Stopwatch.GetTimestamp();
            c.Run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        if (c.Flops > 0)
        {
            double gflops = c.Flops / best / 1e9;
            return $"{best * 1e3,7:F2} ms {gflops,5:F0} GF {gflops / peakFlops,4:P0}";
        }
        double gbps = c.Bytes / best / 1e9;
        return $"{best * 1e3,7:F2} ms {gbps,5:F1} GB/s {gbps / peakBandwidth,4:P0}";
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "?"; }
    }
}
