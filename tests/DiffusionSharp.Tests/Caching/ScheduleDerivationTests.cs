using DiffusionSharp.Caching;

namespace DiffusionSharp.Tests.Caching;

/// <summary>
/// The paper's schedule rule on synthetic change curves, each expectation worked out by hand from the rule: run at 0;
/// sum the changes since the last run; run again (and restart the sum) at the first evaluation where the sum passes delta.
/// </summary>
public class ScheduleDerivationTests
{
    private static int[] Runs(double[] change, double delta)
    {
        var flags = ScheduleDerivation.RecomputeSteps(change, delta);
        return Enumerable.Range(0, flags.Length).Where(e => flags[e]).ToArray();
    }

    private static double[] Constant(int evaluations, double value)
    {
        var c = Enumerable.Repeat(value, evaluations).ToArray();
        c[0] = double.NaN;
        return c;
    }

    [Fact]
    public void Constant_change_runs_every_ceil_delta_over_change_evaluations()
    {
        // 0.03 per step: sums 0.03, 0.06, 0.09 stay under 0.1; 0.12 at e = 4 passes it.
        Assert.Equal([0, 4, 8, 12, 16], Runs(Constant(20, 0.03), 0.1));
        // 0.05 per step at delta 0.1: 0.05, 0.10 (not above), 0.15 at e = 3.
        Assert.Equal([0, 3, 6, 9], Runs(Constant(10, 0.05), 0.1));
    }

    [Fact]
    public void Decaying_change_gives_growing_reuse_intervals()
    {
        // change[e] = 0.4 / e: 0.4 > 0.25 at 1; 0.2 at 2 (sum 0.2), 0.133 at 3 -> 0.333 > 0.25 run; 0.1 at 4, 0.08 at 5
        // (0.18), 0.0667 at 6 (0.2467), 0.0571 at 7 -> 0.3038 run; 0.05, 0.0444, 0.04, 0.0364, 0.0333 (8..12) = 0.2041,
        // + 0.0308 (13) = 0.2349, + 0.0286 (14) = 0.2635 run; 15..19: 0.0267+0.025+0.0235+0.0222+0.0211 = 0.1185.
        var change = Enumerable.Range(0, 20).Select(e => e == 0 ? double.NaN : 0.4 / e).ToArray();
        Assert.Equal([0, 1, 3, 7, 14], Runs(change, 0.25));
    }

    [Fact]
    public void A_spike_forces_a_run_at_the_spike()
    {
        double[] change = [double.NaN, 0.01, 0.01, 0.5, 0.01, 0.01, 0.01];
        Assert.Equal([0, 3], Runs(change, 0.1));
    }

    [Fact]
    public void Delta_zero_runs_every_changing_evaluation_and_a_huge_delta_runs_only_the_first()
    {
        double[] change = [double.NaN, 0.2, 0.0, 0.1, 0.3];
        Assert.Equal([0, 1, 3, 4], Runs(change, 0));
        Assert.Equal([0], Runs(change, 10));
        Assert.Equal([0], Runs([double.NaN], 0.1));
    }

    [Fact]
    public void Bad_curves_and_budgets_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ScheduleDerivation.RecomputeSteps(Constant(4, 0.1), -0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScheduleDerivation.RecomputeSteps(Constant(4, 0.1), double.NaN));
        Assert.Throws<ArgumentException>(() => ScheduleDerivation.RecomputeSteps([double.NaN, 0.1, double.NaN], 0.1));
        Assert.Throws<ArgumentException>(() => ScheduleDerivation.RecomputeSteps([double.NaN, -0.1], 0.1));
        Assert.Throws<ArgumentException>(() => ScheduleDerivation.RecomputeSteps([], 0.1));
    }

    [Fact]
    public void Derive_schedules_every_block_from_its_own_curve_and_keeps_the_curve()
    {
        var curves = new ChangeCurves(["a", "b"], [4, 8], 6,
            [Constant(6, 0.03), [double.NaN, 0.2, 0.2, 0.01, 0.01, 0.01]],
            [Constant(6, 0), Constant(6, 0)], Samples: 3);
        var target = new ScheduleTarget("m", "0123456789", "euler", "discrete", 6, 6);
        var schedule = ScheduleDerivation.Derive(curves, 0.1, target, new ProfileConditions(3, 64, 64, 3));
        Assert.Equal(0.1, schedule.Delta);
        Assert.Equal([true, false, false, false, true, false], schedule.Blocks[0].Recompute);
        Assert.Equal([true, true, true, false, false, false], schedule.Blocks[1].Recompute);
        Assert.Equal((4, 8), (schedule.Blocks[0].Channels, schedule.Blocks[1].Channels));
        Assert.Equal(0.2, schedule.Blocks[1].Change![1]);
        Assert.All(schedule.Blocks, b => Assert.All(b.Corrections, Assert.Null));
        Assert.Equal(4 + 3, schedule.SkippedBlockEvaluations);
    }
}
