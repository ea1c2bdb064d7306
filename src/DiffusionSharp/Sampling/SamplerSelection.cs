namespace DiffusionSharp.Sampling;

/// <summary>
/// What a sampler name parsed to: the sampler, and the spacing the name itself implies ("DPM++ 2M Karras",
/// <c>k_dpmpp_2m_ka</c>), or null when it implies none.
/// </summary>
public readonly record struct SamplerSelection(SamplerInfo Sampler, Scheduler? ImpliedScheduler)
{
    /// <summary>
    /// The spacing to run: an explicit <c>--scheduler</c> wins, then the one the name implies, then the sampler's default.
    /// </summary>
    public Scheduler ResolveScheduler(Scheduler? explicitScheduler = null) =>
        explicitScheduler ?? ImpliedScheduler ?? Sampler.DefaultScheduler;
}
