namespace DiffusionSharp.Caching;

/// <summary>
/// Which blocks of a UNet to recompute at which model evaluation, and how to correct the residuals reused in between:
/// what <c>diffusion cache-profile</c> derives from measured change curves and writes as JSON
/// (<see cref="CacheScheduleFile"/>). A schedule holds for one <see cref="Target"/> (model, sampler, spacing, steps).
/// Evaluations are UNet calls: one per step for most samplers, two for heun and dpm2.
/// </summary>
public sealed record CacheSchedule
{
    public required ScheduleTarget Target { get; init; }

    /// <summary>The change budget the schedule was derived with (the paper's delta); null for hand-made schedules.</summary>
    public double? Delta { get; init; }

    /// <summary>How the change curves were measured: prompts, size and guidance scale (information, not checked).</summary>
    public ProfileConditions? Profile { get; init; }

    /// <summary>One entry per hooked block of the UNet, in execution order.</summary>
    public required IReadOnlyList<BlockSchedule> Blocks { get; init; }

    /// <summary>True when at least one reused residual has a fitted scale/shift.</summary>
    public bool HasScaleShift => Blocks.Any(b => b.Corrections.Any(c => c is not null));

    /// <summary>Block evaluations the schedule skips, over all blocks and evaluations.</summary>
    public int SkippedBlockEvaluations => Blocks.Sum(b => b.Recompute.Count(r => !r));
}

/// <summary>What a schedule was made for; generation refuses a schedule whose target differs from the run's.</summary>
/// <param name="ModelHash">The UNet's fingerprint (<see cref="ModelFingerprint"/>).</param>
/// <param name="Sampler">The sampler's CLI name (<c>ddim_trailing</c>).</param>
/// <param name="Scheduler">The sigma spacing's CLI name (<c>simple</c>).</param>
/// <param name="Evaluations">UNet calls of one image: <see cref="Steps"/> for most samplers.</param>
public sealed record ScheduleTarget(string ModelName, string ModelHash, string Sampler, string Scheduler, int Steps, int Evaluations);

/// <summary>The conditions of a profiling run.</summary>
public sealed record ProfileConditions(int Prompts, int Width, int Height, double CfgScale);

/// <summary>
/// One block's schedule. <see cref="Recompute"/>[e]: run the block at evaluation e (always at 0); otherwise its input
/// plus the residual recorded at the last recompute is used, corrected by <see cref="Corrections"/>[e] when that is set.
/// <see cref="Change"/>[e]: the measured relative L1 change of the residual from evaluation e-1 to e (NaN at 0), or null.
/// </summary>
public sealed record BlockSchedule(string Key, int Channels, bool[] Recompute, double[]? Change, ChannelCorrection?[] Corrections);

/// <summary>A per-channel affine correction of a reused residual: r' = Scale[c] * r + Shift[c].</summary>
public sealed record ChannelCorrection(float[] Scale, float[] Shift);
