using System.Diagnostics;
using System.Globalization;
using DiffusionSharp.Kernels;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- quick [threads]`: measures the machine's FMA and bandwidth ceilings, then each SD 1.5 kernel
/// shape with 1 and N threads, in the same process, and prints GFLOP/s (GB/s for memory-bound ops) and the fraction of
/// the ceiling. Best of several runs; on a shared machine the ratios are what to compare, not the absolute figures.
/// The single-thread column is timed by the thread's CPU time (Linux: CLOCK_THREAD_CPUTIME_ID), which does not count
/// time the thread waited for a core, so it stays meaningful on a loaded machine; the N-thread column is wall time.
/// </summary>
public static unsafe class QuickReport
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : Environment.ProcessorCount;
        string? filter = args.Length > 2 ? args[2] : null;
        Console.WriteLine($"ISA {KernelSettings.BestIsa}, {Environment.ProcessorCount} processors, {threads} threads, load {LoadAverage()}");
        double fma1 = MeasureFma1();
        double fmaN = MachinePeak.FmaGflops(threads, TimeSpan.FromMilliseconds(300));
        double bw1 = MachinePeak.TriadGBps(1, 64);
        double bwN = MachinePeak.TriadGBps(threads, 64);
        Console.WriteLine($"peak: FMA {fma1:F0} GFLOP/s (1 thread), {fmaN:F0} GFLOP/s ({threads}); triad {bw1:F1} GB/s (1), {bwN:F1} GB/s ({threads})");
        Console.WriteLine($"{"kernel",-36} {"1 thread",22} {threads + " threads",22}");
        if (filter == null || filter == "isa")
        {
            foreach (var isa in Enum.GetValues<KernelIsa>().Where(KernelSettings.IsSupported))
            {
                using var c = KernelCases.Linear(4096, 1280, 320, isa: isa);
                Console.WriteLine($"{c.Name,-36} {Measure(c, 1, fma1, bw1),22}");
            }
            if (filter == "isa") return;
        }
        foreach (var make in KernelCases.Sd15())
        {
            using var c = make();
            if (filter != null && !c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            string one = Measure(c, 1, fma1, bw1), many = Measure(c, threads, fmaN, bwN);
            Console.WriteLine($"{c.Name,-36} {one,22} {many,22}");
        }
    }

    /// <summary>
    /// `-- conv-choice`: single-thread CPU time of implicit GEMM and Winograd for 3x3 stride-1 convolutions over a grid of
    /// square sizes and channel counts (Cin = Cout, then SD's few-channel ends), and their ratio — the table <c>Conv2dKernel.PrefersWinograd</c> is
    /// derived from (docs/KERNELS.md). CPU time, so the ratio holds on a loaded machine.
    /// </summary>
    public static void RunConvChoice()
    {
        Console.WriteLine($"ISA {KernelSettings.BestIsa}, load {LoadAverage()}; one thread, CPU time, best of 3+");
        Console.WriteLine($"{"size x channels",-18} {"implicit GEMM",16} {"Winograd",16} {"GEMM / Winograd",16}");
        var shapes = new List<(int Size, int Cin, int Cout)>();
        foreach (int size in new[] { 8, 16, 32, 64, 128 })
        foreach (int channels in new[] { 32, 64, 128, 256, 320, 512, 640, 1280 })
            if ((double)size * size * channels * channels <= 128.0 * 128 * 512 * 512) shapes.Add((size, channels, channels));
        // The few-channel ends of SD: UNet conv_in / conv_out, VAE decoder conv_in / conv_out.
        shapes.AddRange([(64, 4, 320), (64, 320, 4), (64, 4, 512), (256, 128, 3), (64, 16, 16), (64, 8, 8)]);
        foreach (var (size, cin, cout) in shapes)
        {
            using var gemm = KernelCases.Conv3x3(size, size, cin, cout);
            using var wino = KernelCases.Conv3x3(size, size, cin, cout, winograd: true);
            double tg = BestCpuSeconds(gemm), tw = BestCpuSeconds(wino);
            Console.WriteLine($"{size + "x" + size + "x" + cin + "->" + cout,-18} {tg * 1e3,13:F2} ms {tw * 1e3,13:F2} ms {tg / tw,16:F2}");
        }
    }

    private static double BestCpuSeconds(KernelCase c)
    {
        using var scheduler = new ThreadScheduler(1);
        using var scope = scheduler.Use();
        c.Run();
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < 20 && (i < 3 || total.Elapsed.TotalSeconds < 0.5); i++)
        {
            double cpu = ThreadCpuSeconds();
            c.Run();
            best = Math.Min(best, ThreadCpuSeconds() - cpu);
        }
        return best;
    }

    /// <summary>Single-thread FMA peak by CPU time: the library's probe loop, timed on this thread.</summary>
    private static double MeasureFma1()
    {
        double wall = MachinePeak.FmaGflops(1, TimeSpan.FromMilliseconds(300));
        using var scheduler = new ThreadScheduler(1);
        double best = 0;
        for (int i = 0; i < 3; i++)
        {
            double cpu0 = ThreadCpuSeconds(), wall0 = Stopwatch.GetTimestamp();
            double gflops = MachinePeak.FmaGflops(1, TimeSpan.FromMilliseconds(200), repeats: 1);
            double ratio = (Stopwatch.GetTimestamp() - wall0) / Stopwatch.Frequency / Math.Max(1e-9, ThreadCpuSeconds() - cpu0);
            best = Math.Max(best, gflops * Math.Max(1.0, ratio));
        }
        return OperatingSystem.IsLinux() ? best : wall;
    }

    private static string Measure(KernelCase c, int threads, double peakFlops, double peakBandwidth)
    {
        using var scheduler = new ThreadScheduler(threads);
        using var scope = scheduler.Use();
        c.Run();
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        bool cpuTime = threads == 1 && OperatingSystem.IsLinux();
        for (int i = 0; i < 20 && (i < 3 || total.Elapsed.TotalSeconds < 2); i++)
        {
            long start = Stopwatch.GetTimestamp();
            double cpu = cpuTime ? ThreadCpuSeconds() : 0;
            c.Run();
            best = Math.Min(best, cpuTime ? ThreadCpuSeconds() - cpu : Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        if (c.Flops > 0)
        {
            double gflops = c.Flops / best / 1e9;
            return $"{best * 1e3,7:F2} ms {gflops,5:F0} GF {gflops / peakFlops,4:P0}";
        }
        double gbps = c.Bytes / best / 1e9;
        return $"{best * 1e3,7:F2} ms {gbps,5:F1} GB/s {gbps / peakBandwidth,4:P0}";
    }

    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int clock_gettime(int clock, TimeSpec* time);

    /// <summary>CPU time consumed by the calling thread (CLOCK_THREAD_CPUTIME_ID).</summary>
    private static double ThreadCpuSeconds()
    {
        TimeSpec t;
        clock_gettime(3, &t);
        return t.Seconds + t.Nanoseconds * 1e-9;
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "?"; }
    }
}
