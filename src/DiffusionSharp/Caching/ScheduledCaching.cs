namespace DiffusionSharp.Caching;

/// <summary>
/// Caching by a profiled <see cref="CacheSchedule"/>, with its fitted scale/shift corrections unless
/// <paramref name="useScaleShift"/> is false. <paramref name="source"/> names the schedule in errors (its file path).
/// </summary>
public sealed class ScheduledCaching(CacheSchedule schedule, bool useScaleShift = true, string source = "(in memory)") : BlockCaching
{
    public CacheSchedule Schedule { get; } = schedule ?? throw new ArgumentNullException(nameof(schedule));

    public bool UseScaleShift { get; } = useScaleShift && schedule.HasScaleShift;

    public string Source { get; } = source;

    public override string Description
        => (Schedule.Delta is { } d ? $"schedule delta {d.ToString("0.######", System.Globalization.CultureInfo.InvariantCulture)}" : "schedule")
           + (UseScaleShift ? " + scale/shift" : "");

    public override IBlockCacheRun Prepare(CacheTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        CheckTarget(target);
        var blocks = target.Unet.HookedBlocks;
        var byKey = Schedule.Blocks.ToDictionary(b => b.Key, StringComparer.Ordinal);
        var recompute = new bool[blocks.Count][];
        var corrections = new ChannelCorrection?[blocks.Count][];
        foreach (var block in blocks)
        {
            if (!byKey.Remove(block.Key, out var entry))
                throw new CacheScheduleException(Source, $"has no entry for the UNet block '{block.Key}': it was made for another model.");
            if (entry.Channels != block.Channels)
                throw new CacheScheduleException(Source, $"block '{block.Key}' has {entry.Channels} channels in the schedule and {block.Channels} in the UNet.");
            recompute[block.Index] = entry.Recompute;
            corrections[block.Index] = UseScaleShift ? entry.Corrections : new ChannelCorrection?[target.Evaluations];
        }
        if (byKey.Count > 0)
            throw new CacheScheduleException(Source, $"names block '{byKey.Keys.First()}', which this UNet does not have: it was made for another model.");
        return new CachePlan(target, recompute, corrections);
    }

    private void CheckTarget(CacheTarget run)
    {
        var made = Schedule.Target;
        if (made.Sampler != run.Sampler)
            throw new CacheScheduleException(Source, $"was made for the {made.Sampler} sampler, not {run.Sampler}; profile this sampler with 'diffusion cache-profile' or use --cache auto.");
        if (made.Scheduler != run.Scheduler)
            throw new CacheScheduleException(Source, $"was made for the {made.Scheduler} schedule, not {run.Scheduler}.");
        if (made.Steps != run.Steps)
            throw new CacheScheduleException(Source, $"was made for {made.Steps} steps, not {run.Steps}; profile {run.Steps} steps with 'diffusion cache-profile' or use --cache auto.");
        if (made.Evaluations != run.Evaluations)
            throw new CacheScheduleException(Source, $"was made for {made.Evaluations} UNet calls per image; this run makes {run.Evaluations}.");
        string hash = ModelFingerprint.Of(run.Model);
        if (!string.Equals(made.ModelHash, hash, StringComparison.OrdinalIgnoreCase))
            throw new CacheScheduleException(Source,
                $"was made for the model '{made.ModelName}' (hash {made.ModelHash}), not '{run.Model.Name}' (hash {hash}); profile this model with 'diffusion cache-profile' or use --cache auto.");
    }
}
