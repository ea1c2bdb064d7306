namespace DiffusionSharp.Sampling;

/// <summary>
/// One entry of <see cref="SamplerRegistry"/>: a sampler's names, its default spacing and how to build it.
/// </summary>
public sealed class SamplerInfo
{
    private readonly Func<double?, Sampler> _create;

    internal SamplerInfo(string name, string webUiLabel, string[] aliases, Scheduler defaultScheduler, double? defaultEta,
        Func<double?, Sampler> create)
    {
        Name = name;
        WebUiLabel = webUiLabel;
        Aliases = aliases;
        DefaultScheduler = defaultScheduler;
        DefaultEta = defaultEta;
        _create = create;
    }

    /// <summary>The stable-diffusion.cpp <c>--sampling-method</c> name (<c>euler_a</c>, <c>dpm++2m</c>, ...).</summary>
    public string Name { get; }

    /// <summary>The A1111 "Sampler" label (<c>Euler a</c>, <c>DPM++ 2M</c>, ...) written into PNG metadata.</summary>
    public string WebUiLabel { get; }

    /// <summary>Other accepted spellings: A1111's <c>k_*</c> aliases and ComfyUI's <c>sampler_name</c>.</summary>
    public IReadOnlyList<string> Aliases { get; }

    /// <summary>The spacing used when neither the user nor the label picks one (stable-diffusion.cpp's per-sampler default).</summary>
    public Scheduler DefaultScheduler { get; }

    /// <summary>The eta used when none is given, or null for samplers that have no eta.</summary>
    public double? DefaultEta { get; }

    /// <summary>Builds the sampler; <paramref name="eta"/> overrides <see cref="DefaultEta"/>.</summary>
    /// <exception cref="ArgumentException">An eta was given to a sampler that has none.</exception>
    public Sampler Create(double? eta = null)
    {
        if (eta is not null && DefaultEta is null)
            throw new ArgumentException($"The {Name} sampler has no eta; it is used by euler_a, dpm++2s_a, ddim and ddim_trailing.", nameof(eta));
        return _create(eta ?? DefaultEta);
    }

    /// <summary>The A1111 (>= 1.9) infotext fields for this sampler run on <paramref name="scheduler"/>.</summary>
    public SamplerInfotext Infotext(Scheduler scheduler) => new(WebUiLabel, SchedulerNames.WebUiLabel(scheduler));

    public override string ToString() => Name;
}
