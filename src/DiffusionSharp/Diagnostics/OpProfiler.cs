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
/// Recording is per thread: <see cref="Begin"/> starts it on the calling thread, and only layers called on that thread
/// are recorded (a model runs its layers on the thread that calls it; the kernels' own workers are inside the measured
/// spans), so models running on other threads at the same time do not mix in. Off, every hook is one thread-static
/// read and no allocation. Layers call <see cref="Start"/> before their kernel and <see cref="Stop"/> after it; each
/// hook times one kernel call (not for nested spans of the same call).
/// </summary>
public static class OpProfiler
{
    [ThreadStatic] private static Dictionary<OpShape, (int Calls, long Ticks, long Macs)>? t_totals;

    /// <summary>Whether the calling thread is recording.</summary>
    public static bool Enabled => t_totals != null;

    /// <summary>Clears what the calling thread recorded and starts recording on it.</summary>
    public static void Begin() => t_totals = [];

    /// <summary>Stops recording on the calling thread and returns its totals, largest time first (empty if it was not recording).</summary>
    public static IReadOnlyList<OpTotals> End()
    {
        var totals = t_totals;
        t_totals = null;
        if (totals == null) return [];
        return totals.Select(e => new OpTotals(e.Key, e.Value.Calls, Stopwatch.GetElapsedTime(0, e.Value.Ticks), e.Value.Macs))
            .OrderByDescending(t => t.Time).ToList();
    }

    /// <summary>A timestamp when the calling thread is recording, else 0.</summary>
    public static long Start() => t_totals != null ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Adds the span since <paramref name="start"/> (from <see cref="Start"/>; 0 = not recording) to the shape's totals.</summary>
    public static void Stop(long start, string kind, long m, long n, long k, long multiplyAccumulates)
    {
        var totals = t_totals;
        if (start == 0 || totals == null) return;
        long ticks = Stopwatch.GetTimestamp() - start;
        var key = new OpShape(kind, (int)Math.Min(m, int.MaxValue), (int)Math.Min(n, int.MaxValue), (int)Math.Min(k, int.MaxValue));
        totals.TryGetValue(key, out var t);
        totals[key] = (t.Calls + 1, t.Ticks + ticks, t.Macs + multiplyAccumulates);
    }
}
