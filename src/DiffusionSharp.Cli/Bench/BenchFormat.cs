using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DiffusionSharp.Cli.Bench;

/// <summary>Number formatting shared by the JSON and table reports: invariant culture, a few significant digits.</summary>
public static class BenchFormat
{
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    /// <summary><paramref name="value"/> to 5 significant digits (timings are not more precise than that); must be finite.</summary>
    public static double Round(double value)
    {
        if (!double.IsFinite(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "A benchmark figure must be finite.");
        return double.Parse(value.ToString("G5", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    public static void WriteJson(TextWriter output, JsonObject json) => output.WriteLine(json.ToJsonString(s_indented));

    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Seconds with 3 significant digits and a unit that keeps them readable (s, ms, µs).</summary>
    public static string Seconds(double seconds) => seconds switch
    {
        >= 1 => Invariant($"{seconds:0.00} s"),
        >= 1e-3 => Invariant($"{seconds * 1e3:0.00} ms"),
        _ => Invariant($"{seconds * 1e6:0.0} µs"),
    };

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => Invariant($"{bytes / (double)(1L << 30):0.00} GiB"),
        >= 1L << 20 => Invariant($"{bytes / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => Invariant($"{bytes / 1024.0:0.0} KiB"),
        _ => Invariant($"{bytes} B"),
    };
}
