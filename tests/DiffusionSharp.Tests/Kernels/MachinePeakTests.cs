using DiffusionSharp.Kernels;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>
/// The ceilings probe: figures must be finite and physically plausible for any CPU this runs on (a broken loop or
/// timer gives 0, infinity or absurd values). Scaling with threads is not asserted: CI machines are shared.
/// </summary>
public class MachinePeakTests
{
    [Fact]
    public void Fma_probe_reports_a_plausible_figure()
    {
        double one = MachinePeak.FmaGflops(1, TimeSpan.FromMilliseconds(20), repeats: 2);
        Assert.InRange(one, 0.5, 5000);
    }

    [Fact]
    public void Triad_probe_reports_a_plausible_figure()
    {
        double one = MachinePeak.TriadGBps(1, megabytesPerArray: 8, repeats: 2);
        Assert.InRange(one, 0.1, 2000);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MachinePeak.FmaGflops(0, TimeSpan.FromMilliseconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => MachinePeak.TriadGBps(1, megabytesPerArray: 0));
    }
}
