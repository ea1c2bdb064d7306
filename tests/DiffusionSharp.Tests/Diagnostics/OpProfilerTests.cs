using DiffusionSharp.Diagnostics;

namespace DiffusionSharp.Tests.Diagnostics;

/// <summary><see cref="OpProfiler"/>: totals per shape, nothing recorded when off, and recording confined to the thread
/// that began it (models running on other threads at the same time must not mix in).</summary>
public class OpProfilerTests
{
    [Fact]
    public void Totals_add_up_per_shape_and_nothing_is_recorded_when_off()
    {
        Assert.Equal(0, OpProfiler.Start());
        OpProfiler.Stop(OpProfiler.Start(), "linear", 4, 5, 6, 120);
        Assert.Empty(OpProfiler.End());

        OpProfiler.Begin();
        for (int i = 0; i < 3; i++) OpProfiler.Stop(OpProfiler.Start(), "linear", 4, 5, 6, 120);
        OpProfiler.Stop(OpProfiler.Start(), "attention", 8, 9, 10, 1440);
        var totals = OpProfiler.End();

        Assert.False(OpProfiler.Enabled);
        Assert.Equal(2, totals.Count);
        var linear = totals.Single(t => t.Shape.Kind == "linear");
        Assert.Equal(new OpShape("linear", 4, 5, 6), linear.Shape);
        Assert.Equal(3, linear.Calls);
        Assert.Equal(360, linear.MultiplyAccumulates);
        Assert.Equal(1440, totals.Single(t => t.Shape.Kind == "attention").MultiplyAccumulates);
        Assert.All(totals, t => Assert.True(t.Time >= TimeSpan.Zero));
    }

    [Fact]
    public void Another_thread_s_operations_are_not_recorded()
    {
        OpProfiler.Begin();
        var other = new Thread(() =>
        {
            Assert.False(OpProfiler.Enabled);
            OpProfiler.Stop(OpProfiler.Start(), "linear", 1, 1, 1, 1);
            OpProfiler.Stop(1, "linear", 1, 1, 1, 1);          // even a started span from elsewhere
        });
        other.Start();
        other.Join();
        OpProfiler.Stop(OpProfiler.Start(), "groupnorm", 2, 3, 0, 0);
        var totals = OpProfiler.End();

        Assert.Equal("groupnorm", Assert.Single(totals).Shape.Kind);
    }
}
