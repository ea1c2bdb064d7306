using System.Text.Json;
using DiffusionSharp.Caching;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Caching;

/// <summary>PSNR and SSIM against float64 PyTorch (tests/fixtures/caching/image_quality.json, tools/eval/make_caching_fixtures.py).</summary>
public class ImageQualityTests
{
    public static TheoryData<string> Cases() => new(Fixture().Select(c => c.Name));

    private static IEnumerable<(string Name, RgbImage A, RgbImage B, double Psnr, double Ssim)> Fixture()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyModelFixtures.Root, "caching", "image_quality.json")));
        foreach (var c in json.RootElement.GetProperty("cases").EnumerateArray())
        {
            int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
            byte[] Pixels(string name) => c.GetProperty(name).EnumerateArray().Select(v => (byte)v.GetInt32()).ToArray();
            yield return (c.GetProperty("name").GetString()!, new RgbImage(w, h, Pixels("a")), new RgbImage(w, h, Pixels("b")),
                c.GetProperty("psnr").GetDouble(), c.GetProperty("ssim").GetDouble());
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Psnr_and_ssim_match_pytorch(string name)
    {
        var c = Fixture().Single(f => f.Name == name);
        Assert.Equal(c.Psnr, ImageQuality.Psnr(c.A, c.B), 9);
        Assert.Equal(c.Ssim, ImageQuality.Ssim(c.A, c.B), 9);
        Assert.Equal(c.Ssim, ImageQuality.Ssim(c.B, c.A), 9);
    }

    [Fact]
    public void Identical_images_score_infinity_and_one()
    {
        var c = Fixture().First();
        Assert.Equal(double.PositiveInfinity, ImageQuality.Psnr(c.A, c.A));
        Assert.Equal(1.0, ImageQuality.Ssim(c.A, c.A), 12);
    }

    [Fact]
    public void Different_sizes_and_tiny_images_are_refused()
    {
        Assert.Throws<ArgumentException>(() => ImageQuality.Psnr(new RgbImage(12, 12), new RgbImage(12, 13)));
        Assert.Throws<ArgumentException>(() => ImageQuality.Ssim(new RgbImage(10, 12), new RgbImage(10, 12)));
    }
}
