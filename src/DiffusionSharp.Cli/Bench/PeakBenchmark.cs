using System.Text.Json.Nodes;

namespace DiffusionSharp.Cli.Bench;

/// <summary><c>diffusion bench peak</c>: the machine's fp32 FMA and bandwidth ceilings on 1 and N threads.</summary>
public sealed record PeakBenchmark(BenchMachine Machine)
{
    public static PeakBenchmark Run(int threads, TextWriter log)
    {
        var machine = BenchMachine.Describe(threads);
        log.WriteLine("measuring the machine's ceilings");
        return new PeakBenchmark(machine with { Ceilings = MachineCeilings.Measure(threads) });
    }

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["benchmark"] = "peak" };
        Machine.AddTo(json);
        return json;
    }

    public void WriteTable(TextWriter o)
    {
        Machine.WriteTable(o);
        o.WriteLine("FMA: 16 independent vector accumulators per thread on the widest accelerated vectors, best of 12 runs of 25 ms;");
        o.WriteLine("triad: a = b + s·c over 64 MB arrays, 12 bytes per element, best of 12 passes.");
    }
}
