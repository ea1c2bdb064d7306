using System.Text.Json;
using DiffusionSharp.Evaluation;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Quantization;

namespace DiffusionSharp.Tests.Evaluation;

/// <summary>PSNR and SSIM against float64 PyTorch (tests/fixtures/caching/image_quality.json, tools/eval/make_caching_fixtures.py).</summary>
public class ImageMetricsTests
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
        Assert.Equal(c.Psnr, ImageMetrics.Psnr(c.A, c.B), 9);
        Assert.Equal(c.Ssim, ImageMetrics.Ssim(c.A, c.B), 9);
        Assert.Equal(c.Ssim, ImageMetrics.Ssim(c.B, c.A), 9);
    }

    [Fact]
    public void Identical_images_score_infinity_and_one()
    {
        var c = Fixture().First();
        Assert.Equal(double.PositiveInfinity, ImageMetrics.Psnr(c.A, c.A));
        Assert.Equal(1.0, ImageMetrics.Ssim(c.A, c.A), 12);
    }

    [Fact]
    public void Different_sizes_and_tiny_images_are_refused()
    {
        Assert.Throws<ArgumentException>(() => ImageMetrics.Psnr(new RgbImage(12, 12), new RgbImage(12, 13)));
        Assert.Throws<ArgumentException>(() => ImageMetrics.Ssim(new RgbImage(10, 12), new RgbImage(10, 12)));
    }

    /// <summary>A second, independent oracle: numpy implementing Wang et al. 2004 directly (tools/fixtures/make_quant_fixtures.py).</summary>
    [Fact]
    public void Psnr_and_ssim_match_numpy()
    {
        using var f = new QuantFixture();
        var a = new RgbImage(20, 24, f.Floats("ssim.a").Select(v => (byte)v).ToArray());
        var b = new RgbImage(20, 24, f.Floats("ssim.b").Select(v => (byte)v).ToArray());
        Assert.Equal(f.Doubles("ssim.psnr")[0], ImageMetrics.Psnr(a, b), 10);
        Assert.Equal(f.Doubles("ssim.ssim")[0], ImageMetrics.Ssim(a, b), 10);
    }
}
