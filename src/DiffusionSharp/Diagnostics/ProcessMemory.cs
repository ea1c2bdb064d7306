using System.Diagnostics;
using System.Globalization;

namespace DiffusionSharp.Diagnostics;

/// <summary>
/// This process's resident memory, as the kernel counts it: on Linux <c>VmHWM</c> (peak resident set, the figure
/// <c>/usr/bin/time -v</c> and sd.cpp comparisons use) and <c>VmRSS</c> from <c>/proc/self/status</c>; elsewhere the
/// runtime's <see cref="Process.PeakWorkingSet64"/> and <see cref="Process.WorkingSet64"/>.
/// Memory-mapped weight files count once their pages are touched, native tensors once written.
/// </summary>
public static class ProcessMemory
{
    private const string StatusPath = "/proc/self/status";

    /// <summary>The largest resident set this process has had so far, in bytes.</summary>
    public static long PeakResidentBytes()
        => ReadStatus("VmHWM") ?? Process.GetCurrentProcess().PeakWorkingSet64;

    /// <summary>The resident set now, in bytes.</summary>
    public static long ResidentBytes()
        => ReadStatus("VmRSS") ?? Process.GetCurrentProcess().WorkingSet64;

    /// <summary>
    /// The value of a <c>/proc/[pid]/status</c> field given in kB (<c>"VmHWM:\t  123456 kB"</c>), in bytes; null when
    /// the field is absent or not a kB count.
    /// </summary>
    public static long? ParseStatusField(string status, string field)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentException.ThrowIfNullOrEmpty(field);
        foreach (var line in status.AsSpan().EnumerateLines())
        {
            if (!line.StartsWith(field, StringComparison.Ordinal) || line.Length <= field.Length || line[field.Length] != ':') continue;
            var value = line[(field.Length + 1)..].Trim();
            if (!value.EndsWith(" kB", StringComparison.Ordinal)) return null;
            return long.TryParse(value[..^3].TrimEnd(), NumberStyles.None, CultureInfo.InvariantCulture, out long kb) && kb <= long.MaxValue / 1024
                ? kb * 1024
                : null;
        }
        return null;
    }

    private static long? ReadStatus(string field)
        => ProcFile.TryRead(StatusPath) is { } status ? ParseStatusField(status, field) : null;
}
