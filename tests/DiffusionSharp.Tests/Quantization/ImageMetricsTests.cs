using DiffusionSharp.IO.Png;
using DiffusionSharp.Quantization;

namespace DiffusionSharp.Tests.Quantization;

/// <summary>PSNR and SSIM against numpy (tools/fixtures/make_quant_fixtures.py implements Wang et al. 2004 directly).</summary>
public class ImageMetricsTests
{
    [Fact]
    public void Psnr_and_ssim_match_numpy()
    {
        using var f = new QuantFixture();
        var a = new RgbImage(20, 24, f.Floats("ssim.a").Select(v => (byte)v).ToArray());
        var b = new RgbImage(20, 24, f.Floats("ssim.b").Select(v => (byte)v).ToArray());
        Assert.Equal(f.Doubles("ssim.psnr")[0], ImageMetrics.Psnr(a, b), 10);
        Assert.Equal(f.Doubles("ssim.ssim")[0], ImageMetrics.Ssim(a, b), 10);
    }

    [Fact]
    public void Identical_images_score_perfectly_and_sizes_must_match()
    {
        var a = new RgbImage(12, 12, Enumerable.Range(0, 432).Select(i => (byte)(i * 7)).ToArray());
        Assert.Equal(double.PositiveInfinity, ImageMetrics.Psnr(a, a));
        Assert.Equal(1.0, ImageMetrics.Ssim(a, a), 12);
        Assert.Throws<ArgumentException>(() => ImageMetrics.Psnr(a, new RgbImage(12, 11)));
        Assert.Throws<ArgumentException>(() => ImageMetrics.Ssim(new RgbImage(10, 10), new RgbImage(10, 10)));
    }
}
