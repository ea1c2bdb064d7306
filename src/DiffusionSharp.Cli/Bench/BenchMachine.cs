using System.Text.Json.Nodes;
using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels;
using DiffusionSharp.Pipeline;

namespace DiffusionSharp.Cli.Bench;

/// <summary>
/// Where a benchmark ran: CPU, processors, the kernels' instruction-set path, runtime, thread count and load average
/// (taken when the benchmark started), with the ceilings measured in the same process.
/// </summary>
public sealed record BenchMachine(
    string Cpu, int ProcessorCount, KernelIsa Isa, bool ReferenceKernels, string Dotnet, string Version, int Threads,
    double? LoadAverage, MachineCeilings Ceilings)
{
    /// <summary>Describes this process's machine for a run on <paramref name="threads"/> threads; the ceilings are measured later.</summary>
    public static BenchMachine Describe(int threads) => new(
        CpuInfo.ModelName, Environment.ProcessorCount, KernelSettings.BestIsa, KernelSettings.UseReference,
        Environment.Version.ToString(), TextToImagePipeline.Version, threads, CpuInfo.LoadAverage(), MachineCeilings.NotMeasured);

    /// <summary>The machine fields every benchmark's JSON starts with (names documented in docs/BENCHMARKS.md).</summary>
    public void AddTo(JsonObject json)
    {
        json["cpu"] = Cpu;
        json["processor_count"] = ProcessorCount;
        json["isa"] = Isa.ToString();
        json["reference_kernels"] = ReferenceKernels;
        json["dotnet"] = Dotnet;
        json["diffusionsharp"] = Version;
        json["threads"] = Threads;
        json["load_average"] = LoadAverage;
        json["peak_gflops"] = BenchFormat.Round(Ceilings.FmaGflops);
        json["peak_gflops_1t"] = BenchFormat.Round(Ceilings.FmaGflops1Thread);
        json["bandwidth_gbps"] = BenchFormat.Round(Ceilings.TriadGBps);
        json["bandwidth_gbps_1t"] = BenchFormat.Round(Ceilings.TriadGBps1Thread);
    }

    /// <summary>The machine and ceiling lines of the readable report.</summary>
    public void WriteTable(TextWriter o)
    {
        string load = LoadAverage is { } l ? BenchFormat.Invariant($"{l:0.00}") : "unknown";
        o.WriteLine($"machine     {Cpu}, {ProcessorCount} processors, kernels {Isa}{(ReferenceKernels ? " (REFERENCE kernels forced)" : "")}, .NET {Dotnet}, DiffusionSharp {Version}");
        o.WriteLine($"threads     {Threads}; load average {load} at start");
        o.WriteLine(Threads == 1
            ? BenchFormat.Invariant($"ceilings    fp32 FMA {Ceilings.FmaGflops:0} GFLOP/s, triad bandwidth {Ceilings.TriadGBps:0.0} GB/s (1 thread)")
            : BenchFormat.Invariant($"ceilings    fp32 FMA {Ceilings.FmaGflops:0} GFLOP/s on {Threads} threads, {Ceilings.FmaGflops1Thread:0} on 1; triad bandwidth {Ceilings.TriadGBps:0.0} GB/s on {Threads}, {Ceilings.TriadGBps1Thread:0.0} on 1"));
    }
}
