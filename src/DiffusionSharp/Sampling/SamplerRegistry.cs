namespace DiffusionSharp.Sampling;

/// <summary>
/// The samplers by name. Names are stable-diffusion.cpp's <c>--sampling-method</c> values; A1111 labels, A1111 <c>k_*</c>
/// aliases and ComfyUI names are accepted too, ignoring case. A label may end in a schedule ("DPM++ 2M Karras",
/// "Euler a Exponential") or, for the <c>k_*</c> aliases, in <c>_ka</c> (Karras), which sets
/// <see cref="SamplerSelection.ImpliedScheduler"/>.
/// </summary>
public static class SamplerRegistry
{
    /// <summary>Every sampler, in the order the documentation lists them.</summary>
    public static IReadOnlyList<SamplerInfo> All { get; } =
    [
        new("euler", "Euler", ["k_euler"], Scheduler.Discrete, null, _ => new EulerSampler()),
        new("euler_a", "Euler a", ["k_euler_a", "k_euler_ancestral", "euler_ancestral"], Scheduler.Discrete, 1,
            eta => new EulerAncestralSampler(eta!.Value)),
        new("heun", "Heun", ["k_heun"], Scheduler.Discrete, null, _ => new HeunSampler()),
        new("dpm2", "DPM2", ["k_dpm_2", "dpm_2"], Scheduler.Discrete, null, _ => new Dpm2Sampler()),
        new("dpm++2m", "DPM++ 2M", ["k_dpmpp_2m", "dpmpp_2m"], Scheduler.Discrete, null, _ => new DpmPP2MSampler()),
        new("dpm++2s_a", "DPM++ 2S a", ["k_dpmpp_2s_a", "dpmpp_2s_ancestral"], Scheduler.Discrete, 1,
            eta => new DpmPP2SAncestralSampler(eta!.Value)),
        new("lcm", "LCM", ["k_lcm"], Scheduler.Lcm, null, _ => new LcmSampler()),
        new("ddim", "DDIM", [], Scheduler.DdimUniform, 0, eta => new DdimSampler(eta!.Value)),
        new("ddim_trailing", "DDIM", [], Scheduler.Simple, 0, eta => new DdimSampler(eta!.Value)),
    ];

    /// <summary>euler_a, as in A1111 and stable-diffusion.cpp.</summary>
    public static SamplerInfo Default { get; } = All.Single(s => s.Name == "euler_a");

    /// <summary>Finds a sampler by name, alias or label, with an optional schedule suffix.</summary>
    /// <exception cref="ArgumentException">The name is unknown; the message lists the valid names.</exception>
    public static SamplerSelection Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (TryParse(name, out var selection)) return selection;
        throw new ArgumentException(
            $"Unknown sampler '{name}'. Valid samplers: {string.Join(", ", All.Select(s => s.Name))}; " +
            $"web-UI labels: {string.Join(", ", All.Select(s => s.WebUiLabel).Distinct())} (optionally followed by a schedule such as ' Karras').",
            nameof(name));
    }

    /// <summary>Like <see cref="Parse"/>, without throwing.</summary>
    public static bool TryParse(string? name, out SamplerSelection selection)
    {
        string key = name?.Trim() ?? "";
        if (Find(key) is { } exact)
        {
            selection = new SamplerSelection(exact, null);
            return true;
        }
        foreach (var scheduler in Enum.GetValues<Scheduler>())
        {
            foreach (string suffix in new[] { SchedulerNames.WebUiLabel(scheduler), SchedulerNames.Name(scheduler) })
            {
                if (key.Length > suffix.Length + 1 && key.EndsWith(" " + suffix, StringComparison.OrdinalIgnoreCase)
                    && Find(key[..^(suffix.Length + 1)].TrimEnd()) is { } withSchedule)
                {
                    selection = new SamplerSelection(withSchedule, scheduler);
                    return true;
                }
            }
        }
        if (key.StartsWith("k_", StringComparison.OrdinalIgnoreCase) && key.EndsWith("_ka", StringComparison.OrdinalIgnoreCase)
            && Find(key[..^3]) is { } karras)
        {
            selection = new SamplerSelection(karras, Scheduler.Karras);
            return true;
        }
        selection = default;
        return false;
    }

    private static SamplerInfo? Find(string key)
    {
        foreach (var info in All)
            if (Matches(key, info.Name)) return info;
        foreach (var info in All)
            if (Matches(key, info.WebUiLabel) || info.Aliases.Any(a => Matches(key, a))) return info;
        return null;
    }

    private static bool Matches(string key, string name) => string.Equals(key, name, StringComparison.OrdinalIgnoreCase);
}
