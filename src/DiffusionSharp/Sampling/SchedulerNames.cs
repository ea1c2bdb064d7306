namespace DiffusionSharp.Sampling;

/// <summary>
/// Spellings of <see cref="Scheduler"/>: the CLI name (stable-diffusion.cpp's where it has one), the A1111
/// "Schedule type" label written into PNG metadata, and parsing of both, case-insensitively.
/// </summary>
public static class SchedulerNames
{
    private static readonly (Scheduler Scheduler, string Name, string WebUiLabel, string[] Aliases)[] Table =
    [
        (Scheduler.Discrete, "discrete", "Uniform", ["normal"]),
        (Scheduler.Karras, "karras", "Karras", []),
        (Scheduler.Exponential, "exponential", "Exponential", []),
        (Scheduler.Simple, "simple", "Simple", []),
        (Scheduler.DdimUniform, "ddim_uniform", "DDIM", []),
        (Scheduler.Lcm, "lcm", "LCM", []),
    ];

    /// <summary>Every scheduler's CLI name, in declaration order.</summary>
    public static IReadOnlyList<string> All { get; } = Array.ConvertAll(Table, e => e.Name);

    /// <summary>The CLI name: <c>discrete</c>, <c>karras</c>, <c>exponential</c>, <c>simple</c>, <c>ddim_uniform</c>, <c>lcm</c>.</summary>
    public static string Name(Scheduler scheduler) => Entry(scheduler).Name;

    /// <summary>
    /// The A1111 (>= 1.9) "Schedule type" label. <see cref="Scheduler.Discrete"/> is written "Uniform", not
    /// "Automatic": A1111 resolves "Automatic" per sampler (to Karras for DPM++ 2M), "Uniform" always to these sigmas.
    /// <see cref="Scheduler.Lcm"/> has no A1111 counterpart and is written "LCM".
    /// </summary>
    public static string WebUiLabel(Scheduler scheduler) => Entry(scheduler).WebUiLabel;

    /// <summary>Parses a CLI name, an alias (<c>normal</c>) or an A1111 label ("Karras", "Uniform", "DDIM"), ignoring case.</summary>
    /// <exception cref="ArgumentException">The name is unknown; the message lists the valid names.</exception>
    public static Scheduler Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (TryParse(name, out var scheduler)) return scheduler;
        throw new ArgumentException(
            $"Unknown scheduler '{name}'. Valid schedulers: {string.Join(", ", All)} (also 'normal' for discrete, " +
            "and the web-UI labels Uniform, Karras, Exponential, Simple, DDIM).", nameof(name));
    }

    /// <summary>Like <see cref="Parse"/>, without throwing.</summary>
    public static bool TryParse(string? name, out Scheduler scheduler)
    {
        string key = name?.Trim() ?? "";
        foreach (var e in Table)
        {
            if (Matches(key, e.Name) || Matches(key, e.WebUiLabel) || Array.Exists(e.Aliases, a => Matches(key, a)))
            {
                scheduler = e.Scheduler;
                return true;
            }
        }
        scheduler = default;
        return false;
    }

    private static bool Matches(string key, string name) => string.Equals(key, name, StringComparison.OrdinalIgnoreCase);

    private static (Scheduler Scheduler, string Name, string WebUiLabel, string[] Aliases) Entry(Scheduler scheduler)
    {
        foreach (var e in Table)
            if (e.Scheduler == scheduler) return e;
        throw new ArgumentOutOfRangeException(nameof(scheduler), scheduler, "Not a defined scheduler.");
    }
}
