using DiffusionSharp.Caching;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.Caching;

/// <summary>The curve plot: one panel per block, the mean drawn on a log axis, red ticks where the schedule runs a block.</summary>
public class ChangeCurvePlotTests
{
    private static ChangeCurves Curves(int blocks, int evaluations)
    {
        var mean = new double[blocks][];
        var std = new double[blocks][];
        for (int i = 0; i < blocks; i++)
        {
            mean[i] = Enumerable.Range(0, evaluations).Select(e => e == 0 ? double.NaN : 0.5 / e).ToArray();
            std[i] = Enumerable.Range(0, evaluations).Select(e => e == 0 ? double.NaN : 0.05 / e).ToArray();
        }
        return new ChangeCurves(Enumerable.Range(0, blocks).Select(i => $"down_blocks.{i}.resnets.0").ToArray(), Enumerable.Repeat(8, blocks).ToArray(),
            evaluations, mean, std, 4);
    }

    private static int Count(RgbImage image, (byte R, byte G, byte B) color)
    {
        int n = 0;
        for (int i = 0; i < image.Pixels.Length; i += 3)
            if ((image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]) == color) n++;
        return n;
    }

    [Fact]
    public void Panels_are_laid_out_four_to_a_row()
    {
        var six = ChangeCurvePlot.Render(Curves(6, 10));
        Assert.Equal((4 * 280, 44 + 2 * 150), (six.Width, six.Height));
        var two = ChangeCurvePlot.Render(Curves(2, 10));
        Assert.Equal((2 * 280, 44 + 150), (two.Width, two.Height));
        Assert.True(Count(two, (20, 60, 170)) > 2 * 100, "the mean lines are missing");
        Assert.Equal(0, Count(two, (210, 30, 30)));
    }

    [Fact]
    public void A_schedule_adds_a_red_tick_under_each_run_after_the_first()
    {
        var curves = Curves(1, 10);
        var schedule = ScheduleDerivation.Derive(curves, 0.4, new ScheduleTarget("m", "h", "euler", "discrete", 10, 10), null);
        int runs = schedule.Blocks[0].Recompute.Skip(1).Count(r => r);
        Assert.InRange(runs, 1, 8);
        var without = ChangeCurvePlot.Render(curves);
        var with = ChangeCurvePlot.Render(curves, schedule);
        // 5 pixels per tick, plus the header line in red.
        Assert.True(Count(with, (210, 30, 30)) - Count(without, (210, 30, 30)) >= 5 * runs);
    }
}
