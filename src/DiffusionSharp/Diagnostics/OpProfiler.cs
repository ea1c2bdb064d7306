using System.Diagnostics;

namespace DiffusionSharp.Diagnostics;

/// <summary>One kind of operation at one shape, as <see cref="OpProfiler"/> aggregates it.</summary>
/// <param name="Kind">What ran: "linear", "linear w4a4", "conv3x3 winograd", "attention", "groupnorm", ...</param>
/// <param name="M">Rows (tokens or output pixels over the batch; attention: batch x heads x query tokens).</param>
/// <param name="N">Outputs per row (attention: key tokens; a normalization: channels).</param>
/// <param name="K">Inputs per output (a convolution: kh·kw·Cin; attention: the head width; a normalization: 0).</param>
public readonly record struct OpShape(string Kind, int M, int N, int K);

/// <summary>The calls of one <see cref="OpShape"/>: how many, their wall time, and their multiply-accumulates.</summary>
public sealed record OpTotals(OpShape Shape, int Calls, TimeSpan Time, long MultiplyAccumulates);

/// <summary>
/// Wall time per operation kind and shape, for finding where a UNet step goes (<c>diffusion bench --profile</c>).
/// Off by default: then every hook is one static read and no allocation. Layers call <see cref="Start"/> before their
/// kernel and <see cref="Stop"/> after it, on the thread that runs the model (the kernels' own workers are inside the
/// measured span). Not for nested spans of the same call: each hook times one kernel call.
/// </summary>
public static class OpProfiler
{
    private static readonly Lock s_lock = new();
    private static readonly Dictionary<OpShape, (int Calls, long Ticks, long Macs)> s_totals = [];
    private static volatile bool s_enabled;

    public static bool Enabled => s_enabled;

    /// <summary>Clears what was recorded and starts recording.</summary>
    public static void Begin()
    {
        lock (s_lock) s_totals.Clear();
        s_enabled = true;
    }

    /// <summary>Stops recording and returns the totals, largest time first.</summary>
    public static IReadOnlyList<OpTotals> End()
    {
        s_enabled = false;
        lock (s_lock)
        {
            var list = s_totals.Select(e => new OpTotals(e.Key, e.Value.Calls, Stopwatch.GetElapsedTime(0, e.Value.Ticks), e.Value.Macs))
                .OrderByDescending(t => t.Time).ToList();
            s_totals.Clear();
            return list;
        }
    }

    /// <summary>A timestamp when recording, else 0.</summary>
    public static long Start() => s_enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Adds the span since <paramref name="start"/> (from <see cref="Start"/>; 0 = not recording) to the shape's totals.</summary>
    public static void Stop(long start, string kind, long m, long n, long k, long multiplyAccumulates)
    {
        if (start == 0 || !s_enabled) return;
        long ticks = Stopwatch.GetTimestamp() - start;
        var key = new OpShape(kind, (int)Math.Min(m, int.MaxValue), (int)Math.Min(n, int.MaxValue), (int)Math.Min(k, int.MaxValue));
        lock (s_lock)
        {
            s_totals.TryGetValue(key, out var t);
            s_totals[key] = (t.Calls + 1, t.Ticks + ticks, t.Macs + multiplyAccumulates);
        }
    }
}
