using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.IO.Png;

public class PngFiltersTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Unfilter_InvertsFilter_ForEveryBytesPerPixel(int type)
    {
        var random = new Random(type);
        foreach (int bpp in new[] { 1, 2, 3, 4 })
        foreach (int pixels in new[] { 1, 2, 7, 33 })
        {
            var prior = new byte[bpp * pixels];
            var row = new byte[bpp * pixels];
            random.NextBytes(prior);
            random.NextBytes(row);
            var filtered = new byte[row.Length];
            PngFilters.Filter(type, row, prior, bpp, filtered);
            PngFilters.Unfilter(type, filtered, prior, bpp);
            Assert.Equal(row, filtered);
        }
    }

    [Theory]
    [InlineData(10, 20, 5, 20)]  // p = 25: |p-a|=15, |p-b|=5, |p-c|=20 -> b
    [InlineData(20, 10, 5, 20)]  // p = 25: a closest
    [InlineData(10, 10, 10, 10)] // all equal: ties go to a
    [InlineData(0, 255, 255, 0)] // p = 0 -> a
    [InlineData(255, 0, 255, 0)] // p = 0: |p-a|=255, |p-b|=0 -> b
    [InlineData(100, 200, 150, 150)] // p = 150 = c
    public void Paeth_PicksTheClosestNeighbour_TiesToAThenB(int a, int b, int c, int expected) =>
        Assert.Equal(expected, PngFilters.Paeth(a, b, c));

    [Fact]
    public void Average_UsesFloorOfTheSum()
    {
        Assert.Equal(127, PngFilters.Predict(3, 255, 0, 0));
        Assert.Equal(255, PngFilters.Predict(3, 255, 255, 0));
    }
}
