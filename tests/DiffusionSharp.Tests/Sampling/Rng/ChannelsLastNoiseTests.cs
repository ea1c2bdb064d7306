using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Tests.Sampling.Rng;

public class ChannelsLastNoiseTests
{
    [Fact]
    public void Draws_AreTheChannelsFirstDrawsTransposed_CallAfterCall()
    {
        const int c = 4, h = 3, w = 5;
        var reference = new PhiloxGenerator(42);
        var channelsLast = new ChannelsLastNoise(new PhiloxGenerator(42), c, h, w);
        for (int call = 0; call < 2; call++)
        {
            var chw = new float[c * h * w];
            var hwc = new float[c * h * w];
            reference.NextNormal(chw);
            channelsLast.NextNormal(hwc);
            for (int ci = 0; ci < c; ci++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        Assert.Equal(chw[(ci * h + y) * w + x], hwc[(y * w + x) * c + ci]);
        }
    }

    [Fact]
    public void RejectsAMismatchedDestinationAndBadShapes()
    {
        var noise = new ChannelsLastNoise(new TorchCpuGenerator(1), 4, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => noise.NextNormal(new float[255]));
        Assert.Contains("256", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelsLastNoise(new TorchCpuGenerator(1), 0, 8, 8));
        Assert.Throws<ArgumentException>(() => new ChannelsLastNoise(new TorchCpuGenerator(1), 65536, 65536, 4));
    }
}
