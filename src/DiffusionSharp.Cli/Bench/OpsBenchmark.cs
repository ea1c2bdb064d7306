using System.Text.Json.Nodes;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Cli.Bench;

/// <summary>One kernel's figure: best wall time of the timed runs, and throughput against the same-process ceiling.</summary>
public sealed record OpResult(string Name, double Flops, double Bytes, double Seconds, double PeakFraction)
{
    public bool IsMemoryBound => Flops == 0;
    public double Gflops => Flops / Seconds / 1e9;
    public double GBps => Bytes / Seconds / 1e9;
}

/// <summary>
/// <c>diffusion bench ops</c>: the main kernels at SD 1.5 shapes on the benchmark's threads, as GFLOP/s (GB/s for
/// memory-bound ops) and as a fraction of the FMA (bandwidth) ceiling measured in the same process. Each op runs once
/// untimed, then <c>repeats</c> times; the best run counts, as for the ceilings (a busy machine only ever slows a run).
/// </summary>
public sealed record OpsBenchmark(BenchMachine Machine, int Repeats, IReadOnlyList<OpResult> Ops)
{
    public static OpsBenchmark Run(int threads, int repeats, TextWriter log, CancellationToken cancellationToken)
    {
        var machine = BenchMachine.Describe(threads);
        log.WriteLine("measuring the machine's ceilings");
        var ceilings = MachineCeilings.Measure(threads);
        var results = new List<OpResult>();
        using var scheduler = new ThreadScheduler(threads);
        using var scope = scheduler.Use();
        foreach (var make in KernelOp.Sd15)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var op = make();
            log.WriteLine($"timing {op.Name}");
            double best = Timing.Repeat(repeats, op.Run).Min();
            double fraction = op.IsMemoryBound ? op.Bytes / best / 1e9 / ceilings.TriadGBps : op.Flops / best / 1e9 / ceilings.FmaGflops;
            results.Add(new OpResult(op.Name, op.Flops, op.Bytes, best, fraction));
        }
        return new OpsBenchmark(machine with { Ceilings = ceilings }, repeats, results);
    }

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["benchmark"] = "ops" };
        Machine.AddTo(json);
        json["repeats"] = Repeats;
        var ops = new JsonArray();
        foreach (var r in Ops)
        {
            ops.Add(new JsonObject
            {
                ["name"] = r.Name,
                ["seconds"] = BenchFormat.Round(r.Seconds),
                ["flops"] = r.IsMemoryBound ? null : r.Flops,
                ["gflops"] = r.IsMemoryBound ? null : BenchFormat.Round(r.Gflops),
                ["bytes"] = r.IsMemoryBound ? r.Bytes : null,
                ["gbps"] = r.IsMemoryBound ? BenchFormat.Round(r.GBps) : null,
                ["peak_fraction"] = BenchFormat.Round(r.PeakFraction),
            });
        }
        json["ops"] = ops;
        return json;
    }

    public void WriteTable(TextWriter o)
    {
        Machine.WriteTable(o);
        o.WriteLine();
        o.WriteLine($"{"kernel (SD 1.5 512x512 shapes)",-36} {"best of " + Repeats,10} {"throughput",14} {"of peak",8}");
        foreach (var r in Ops)
        {
            string rate = r.IsMemoryBound ? BenchFormat.Invariant($"{r.GBps:0.0} GB/s") : BenchFormat.Invariant($"{r.Gflops:0} GFLOP/s");
            o.WriteLine(BenchFormat.Invariant($"{r.Name,-36} {BenchFormat.Seconds(r.Seconds),10} {rate,14} {r.PeakFraction,8:P0}"));
        }
        o.WriteLine("GEMMs are M x N x K; of peak = the FMA ceiling (GB/s: the triad ceiling) on the same threads.");
    }
}
