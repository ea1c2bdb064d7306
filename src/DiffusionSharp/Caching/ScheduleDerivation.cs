namespace DiffusionSharp.Caching;

/// <summary>
/// The paper's automatic schedule (Wimbauer et al., "Cache Me if You Can", arXiv 2312.03209, section 4): walk the
/// evaluations in sampling order; a block runs at evaluation 0; afterwards the relative changes of its residual are
/// summed, and while the sum stays at or below delta the block reuses its cached residual; at the first evaluation
/// where the sum would pass delta the block runs again, refreshes its cache, and the sum restarts from zero.
/// </summary>
public static class ScheduleDerivation
{
    /// <summary>
    /// Recompute flags of one block. <paramref name="change"/>[e]: the relative L1 change from evaluation e-1 to e
    /// (element 0 is not read); <paramref name="delta"/> &gt;= 0. Delta 0 recomputes every evaluation whose change is
    /// above zero.
    /// </summary>
    public static bool[] RecomputeSteps(ReadOnlySpan<double> change, double delta)
    {
        if (!(delta >= 0) || double.IsPositiveInfinity(delta))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "The change budget must be finite and not negative.");
        if (change.IsEmpty) throw new ArgumentException("The change curve is empty.", nameof(change));
        var recompute = new bool[change.Length];
        recompute[0] = true;
        double accumulated = 0;
        for (int e = 1; e < change.Length; e++)
        {
            if (!double.IsFinite(change[e]) || change[e] < 0)
                throw new ArgumentException($"Change at evaluation {e} is {change[e]}; changes are finite and not negative.", nameof(change));
            accumulated += change[e];
            if (accumulated > delta)
            {
                recompute[e] = true;
                accumulated = 0;
            }
        }
        return recompute;
    }

    /// <summary>The schedule of every block of <paramref name="curves"/> for <paramref name="delta"/>, without corrections.</summary>
    public static CacheSchedule Derive(ChangeCurves curves, double delta, ScheduleTarget target, ProfileConditions? profile)
    {
        ArgumentNullException.ThrowIfNull(curves);
        var blocks = new BlockSchedule[curves.Keys.Count];
        for (int i = 0; i < blocks.Length; i++)
            blocks[i] = new BlockSchedule(curves.Keys[i], curves.Channels[i], RecomputeSteps(curves.Mean[i], delta),
                (double[])curves.Mean[i].Clone(), new ChannelCorrection?[curves.Evaluations]);
        return new CacheSchedule { Target = target, Delta = delta, Profile = profile, Blocks = blocks };
    }
}
