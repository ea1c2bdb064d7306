using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Evaluation;

/// <summary>
/// How far an accelerated (cached, quantized, 16-bit) image is from the exact one, on 8-bit RGB:
/// PSNR = 10 log10(255^2 / MSE) over all pixels and channels (+infinity for identical images), and
/// SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03,
/// L = 255, computed per channel over the window positions that fit inside the image ("valid") and averaged over
/// positions and channels — the paper's reference <c>ssim.m</c> per channel. tools/eval/make_caching_fixtures.py
/// computes the same in float64 PyTorch for the tests.
/// </summary>
public static class ImageMetrics
{
    public const int SsimWindow = 11;
    public const double SsimSigma = 1.5;

    public static double Psnr(RgbImage expected, RgbImage actual)
    {
        CheckSameSize(expected, actual);
        double sum = 0;
        var e = expected.Pixels;
        var a = actual.Pixels;
        for (int i = 0; i < e.Length; i++)
        {
            double d = e[i] - a[i];
            sum += d * d;
        }
        double mse = sum / e.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    public static double Ssim(RgbImage expected, RgbImage actual)
    {
        CheckSameSize(expected, actual);
        int w = expected.Width, h = expected.Height;
        if (w < SsimWindow || h < SsimWindow)
            throw new ArgumentException($"SSIM needs images of at least {SsimWindow}x{SsimWindow} pixels, got {w}x{h}.", nameof(expected));
        double[] kernel = GaussianWindow();
        const double c1 = 0.01 * 255 * 0.01 * 255, c2 = 0.03 * 255 * 0.03 * 255;
        int outW = w - SsimWindow + 1, outH = h - SsimWindow + 1;
        double total = 0;
        for (int channel = 0; channel < 3; channel++)
        {
            for (int y = 0; y < outH; y++)
            {
                for (int x = 0; x < outW; x++)
                {
                    double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
                    for (int ky = 0; ky < SsimWindow; ky++)
                    {
                        for (int kx = 0; kx < SsimWindow; kx++)
                        {
                            double g = kernel[ky] * kernel[kx];
                            int i = ((y + ky) * w + x + kx) * 3 + channel;
                            double a = expected.Pixels[i], b = actual.Pixels[i];
                            mx += g * a;
                            my += g * b;
                            sxx += g * a * a;
                            syy += g * b * b;
                            sxy += g * a * b;
                        }
                    }
                    double vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
                    total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
                }
            }
        }
        return total / (3.0 * outW * outH);
    }

    /// <summary>The normalised 1-D Gaussian whose outer product is the SSIM window.</summary>
    private static double[] GaussianWindow()
    {
        var k = new double[SsimWindow];
        double sum = 0;
        for (int i = 0; i < SsimWindow; i++)
        {
            double d = i - (SsimWindow - 1) / 2.0;
            sum += k[i] = Math.Exp(-d * d / (2 * SsimSigma * SsimSigma));
        }
        for (int i = 0; i < SsimWindow; i++) k[i] /= sum;
        return k;
    }

    private static void CheckSameSize(RgbImage expected, RgbImage actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        if (expected.Width != actual.Width || expected.Height != actual.Height)
            throw new ArgumentException($"Images of {expected.Width}x{expected.Height} and {actual.Width}x{actual.Height} cannot be compared.");
    }
}
