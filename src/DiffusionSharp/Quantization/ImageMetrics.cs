using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Quantization;

/// <summary>
/// How far an image is from a reference image of the same size (8-bit RGB):
/// <list type="bullet">
/// <item>PSNR = 10 log10(255² / MSE) over all channels, in dB (identical images: +infinity);</item>
/// <item>SSIM (Wang, Bovik, Sheikh and Simoncelli 2004): per channel, local means, variances and covariance under an
/// 11x11 Gaussian window (σ = 1.5) at every position where the window fits ("valid"), C1 = (0.01·255)²,
/// C2 = (0.03·255)², averaged over positions and channels — the paper's reference settings.</item>
/// </list>
/// </summary>
public static class ImageMetrics
{
    private const int Window = 11;
    private const double Sigma = 1.5;
    private const double C1 = 0.01 * 255 * 0.01 * 255, C2 = 0.03 * 255 * 0.03 * 255;

    public static double Psnr(RgbImage reference, RgbImage image)
    {
        CheckSizes(reference, image);
        double sum = 0;
        for (int i = 0; i < reference.Pixels.Length; i++)
        {
            double d = reference.Pixels[i] - image.Pixels[i];
            sum += d * d;
        }
        double mse = sum / reference.Pixels.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    public static double Ssim(RgbImage reference, RgbImage image)
    {
        CheckSizes(reference, image);
        int w = reference.Width, h = reference.Height;
        if (w < Window || h < Window) throw new ArgumentException($"SSIM needs images of at least {Window}x{Window}, got {w}x{h}.");
        var g = new double[Window];
        double total = 0;
        for (int i = 0; i < Window; i++) total += g[i] = Math.Exp(-((i - Window / 2) * (i - Window / 2)) / (2 * Sigma * Sigma));
        for (int i = 0; i < Window; i++) g[i] /= total;
        double sum = 0;
        int count = 0;
        for (int c = 0; c < 3; c++)
        for (int y = 0; y + Window <= h; y++)
        for (int x = 0; x + Window <= w; x++)
        {
            double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
            for (int dy = 0; dy < Window; dy++)
            for (int dx = 0; dx < Window; dx++)
            {
                double weight = g[dy] * g[dx];
                int at = ((y + dy) * w + x + dx) * 3 + c;
                double a = reference.Pixels[at], b = image.Pixels[at];
                mx += weight * a;
                my += weight * b;
                xx += weight * a * a;
                yy += weight * b * b;
                xy += weight * a * b;
            }
            double vx = xx - mx * mx, vy = yy - my * my, cov = xy - mx * my;
            sum += (2 * mx * my + C1) * (2 * cov + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
            count++;
        }
        return sum / count;
    }

    private static void CheckSizes(RgbImage a, RgbImage b)
    {
        if (a.Width != b.Width || a.Height != b.Height)
            throw new ArgumentException($"Images differ in size: {a.Width}x{a.Height} and {b.Width}x{b.Height}.");
    }
}
