using System.Globalization;
using System.Runtime.InteropServices;

namespace DiffusionSharp.Diagnostics;

/// <summary>What a benchmark report says about the machine: the CPU's name and how busy the machine was.</summary>
public static class CpuInfo
{
    /// <summary>
    /// The CPU's marketing name: the first <c>model name</c> line of <c>/proc/cpuinfo</c> on Linux x86, the
    /// <c>PROCESSOR_IDENTIFIER</c> variable on Windows, else the process architecture.
    /// </summary>
    public static string ModelName { get; } = ReadModelName();

    /// <summary>The 1-minute load average (runnable and waiting threads) from <c>/proc/loadavg</c>; null where there is none.</summary>
    public static double? LoadAverage()
        => ProcFile.TryRead("/proc/loadavg") is { } text ? ParseLoadAverage(text) : null;

    /// <summary>The value of the first <c>model name</c> line of a <c>/proc/cpuinfo</c> text; null when there is none.</summary>
    public static string? ParseModelName(string cpuinfo)
    {
        ArgumentNullException.ThrowIfNull(cpuinfo);
        foreach (var line in cpuinfo.AsSpan().EnumerateLines())
        {
            int colon = line.IndexOf(':');
            if (colon < 0 || !line[..colon].Trim().SequenceEqual("model name")) continue;
            var value = line[(colon + 1)..].Trim();
            return value.IsEmpty ? null : value.ToString();
        }
        return null;
    }

    /// <summary>The first field of a <c>/proc/loadavg</c> text ("0.52 0.58 0.59 1/123 4567"); null when it is not a number.</summary>
    public static double? ParseLoadAverage(string loadavg)
    {
        ArgumentNullException.ThrowIfNull(loadavg);
        var first = loadavg.AsSpan().Trim();
        int space = first.IndexOf(' ');
        if (space >= 0) first = first[..space];
        return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= 0 ? v : null;
    }

    private static string ReadModelName()
        => (ProcFile.TryRead("/proc/cpuinfo") is { } cpuinfo ? ParseModelName(cpuinfo) : null)
           ?? (Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER") is { Length: > 0 } id ? id : null)
           ?? RuntimeInformation.ProcessArchitecture.ToString();
}
