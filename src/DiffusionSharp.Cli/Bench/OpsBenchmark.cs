using System.Text.Json.Nodes;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Cli.Bench;

/// <summary>One kernel's figure: best wall time of the timed runs, and throughput against the same-process ceiling
/// (<see cref="Ceiling"/>: "fp32" FMA, "int8" multiply-add, or "bandwidth").</summary>
public sealed record OpResult(string Name, double Flops, double Bytes, double Seconds, double PeakFraction, string Ceiling)
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
/// <para>With <c>--precision fp16|bf16</c> the GEMM shapes follow again with 16-bit weight panels (same operands), for the
/// cost of widening the weights inside the GEMM.</para>
/// <para>With <c>--quant</c> the quantized layers follow (<see cref="KernelOp.Quantized"/>), their operations (2 M N K)
/// compared with the int8 multiply-add ceiling measured in the same process (<see cref="IntegerPeak"/>); NF4 computes
/// in fp32 and is compared with the FMA ceiling.</para>
public sealed record OpsBenchmark(BenchMachine Machine, int Repeats, IReadOnlyList<OpResult> Ops, double Int8Gops)
{
    public static OpsBenchmark Run(int threads, int repeats, TextWriter log, CancellationToken cancellationToken, bool quantized = false,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        var machine = BenchMachine.Describe(threads);
        log.WriteLine("measuring the machine's ceilings");
        var ceilings = MachineCeilings.Measure(threads);
        double int8 = quantized ? IntegerPeak.Int8Gops(threads, TimeSpan.FromMilliseconds(25), 12) : 0;
        var results = new List<OpResult>();
        using var scheduler = new ThreadScheduler(threads);
        using var scope = scheduler.Use();
        var ops = KernelOp.Sd15.AsEnumerable();
        if (precision != WeightPrecision.Float32) ops = ops.Concat(KernelOp.SixteenBit(precision));
        if (quantized) ops = ops.Concat(KernelOp.Quantized);
        foreach (var make in ops)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var op = make();
            log.WriteLine($"timing {op.Name}");
            double best = Timing.Repeat(repeats, op.Run).Min();
            var (fraction, ceiling) = op.IsMemoryBound ? (op.Bytes / best / 1e9 / ceilings.TriadGBps, "bandwidth")
                : op.IsInteger ? (op.Flops / best / 1e9 / int8, "int8")
                : (op.Flops / best / 1e9 / ceilings.FmaGflops, "fp32");
            results.Add(new OpResult(op.Name, op.Flops, op.Bytes, best, fraction, ceiling));
        }
        return new OpsBenchmark(machine with { Ceilings = ceilings }, repeats, results, int8);
    }

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["benchmark"] = "ops" };
        Machine.AddTo(json);
        json["repeats"] = Repeats;
        if (Int8Gops > 0) json["peak_int8_gops"] = BenchFormat.Round(Int8Gops);
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
                ["ceiling"] = r.Ceiling,
            });
        }
        json["ops"] = ops;
        return json;
    }

    public void WriteTable(TextWriter o)
    {
        Machine.WriteTable(o);
        if (Int8Gops > 0) o.WriteLine(BenchFormat.Invariant($"            int8 multiply-add {Int8Gops:0} GOP/s on {Machine.Threads} thread{(Machine.Threads == 1 ? "" : "s")} (vpmaddubsw + vpaddw, or vpdpbusd ymm)"));
        o.WriteLine();
        o.WriteLine($"{"kernel (SD 1.5 512x512 shapes)",-36} {"best of " + Repeats,10} {"throughput",14} {"of peak",8}");
        foreach (var r in Ops)
        {
            string rate = r.IsMemoryBound ? BenchFormat.Invariant($"{r.GBps:0.0} GB/s")
                : r.Ceiling == "int8" ? BenchFormat.Invariant($"{r.Gflops:0} GOP/s") : BenchFormat.Invariant($"{r.Gflops:0} GFLOP/s");
            o.WriteLine(BenchFormat.Invariant($"{r.Name,-36} {BenchFormat.Seconds(r.Seconds),10} {rate,14} {r.PeakFraction,8:P0}"));
        }
        o.WriteLine("GEMMs are M x N x K; of peak = the FMA ceiling (GB/s: the triad ceiling; GOP/s: the int8 ceiling) on the same threads.");
        o.WriteLine("Winograd rows count the direct convolution's FLOPs (effective GFLOP/s), so they can exceed 100 % of peak.");
    }
}
