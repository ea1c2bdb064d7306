using DiffusionSharp.Tests.Cli;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Tests.Threading;

/// <summary>
/// The process-wide default scheduler (<see cref="ThreadScheduler.SetDefaultThreadCount"/>). Changing it affects every
/// test, so these run with the other tests that change it (the CLI's <c>-t</c>), alone.
/// </summary>
[Collection(CliGenerateCollection.Name)]
public unsafe class DefaultSchedulerTests
{
    private static void CountHit(void* context, int i) => Interlocked.Increment(ref ((int*)context)[i]);

    /// <summary>The CLI sets the default thread count while other threads may compute on the default: the replaced
    /// scheduler must keep working, and asking for a thread count again gives the same scheduler back.</summary>
    [Fact]
    public void Replacing_the_default_never_breaks_a_call_running_on_it()
    {
        var replaced = ThreadScheduler.Default;
        var hits = new int[64];
        Exception? failure = null;
        var worker = new Thread(() =>
        {
            try
            {
                fixed (int* h = hits)
                    for (int round = 0; round < 2000; round++)
                        replaced.For(64, &CountHit, h);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        try
        {
            worker.Start();
            for (int i = 0; i < 50; i++)
            {
                ThreadScheduler.SetDefaultThreadCount(3);
                var three = ThreadScheduler.Default;
                ThreadScheduler.SetDefaultThreadCount(1);
                ThreadScheduler.SetDefaultThreadCount(3);
                Assert.Same(three, ThreadScheduler.Default);
            }
            Assert.True(worker.Join(TimeSpan.FromMinutes(2)), "a call on the replaced default scheduler hung");
        }
        finally
        {
            ThreadScheduler.SetDefaultThreadCount(0);
        }
        Assert.Null(failure);
        Assert.All(hits, h => Assert.Equal(2000, h));
    }
}
