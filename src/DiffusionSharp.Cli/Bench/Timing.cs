using System.Diagnostics;

namespace DiffusionSharp.Cli.Bench;

/// <summary>Wall-clock timing of repeated work: one untimed warm-up (JIT, arena growth), then the timed runs.</summary>
public static class Timing
{
    /// <summary>Seconds of each of <paramref name="repeats"/> timed runs of <paramref name="body"/>, after one warm-up run.</summary>
    public static double[] Repeat(int repeats, Action body)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        body();
        var seconds = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            body();
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return seconds;
    }

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("No values.", nameof(values));
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
