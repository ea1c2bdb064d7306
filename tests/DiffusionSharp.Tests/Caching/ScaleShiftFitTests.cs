using DiffusionSharp.Caching;

namespace DiffusionSharp.Tests.Caching;

/// <summary>
/// The closed-form least-squares scale/shift: it recovers an exact affine relation, it is optimal (no nearby line
/// fits better), and a constant input falls back to scale 1.
/// </summary>
public class ScaleShiftFitTests
{
    private static ChannelCorrection Fit(float[] x, float[] y, int channels)
    {
        var sums = new double[4 * channels];
        ScaleShiftFitter.Accumulate(x, y, channels, sums);
        return ScaleShiftFitter.Solve(sums, channels, x.Length / channels);
    }

    private static (float[] X, float[] Y) Data(int pixels, float[] scale, float[] shift, double noise, int seed)
    {
        var random = new Random(seed);
        int channels = scale.Length;
        var x = new float[pixels * channels];
        var y = new float[pixels * channels];
        for (int p = 0; p < pixels; p++)
            for (int c = 0; c < channels; c++)
            {
                float v = (float)(random.NextDouble() * 4 - 2 + c);
                x[p * channels + c] = v;
                y[p * channels + c] = scale[c] * v + shift[c] + (float)(noise * (random.NextDouble() - 0.5));
            }
        return (x, y);
    }

    [Fact]
    public void An_exact_affine_relation_is_recovered_per_channel()
    {
        float[] scale = [1.0f, 0.5f, -2.0f, 1.25f], shift = [0.0f, 0.3f, -1.0f, 2.5f];
        var (x, y) = Data(300, scale, shift, noise: 0, seed: 1);
        var fit = Fit(x, y, 4);
        for (int c = 0; c < 4; c++)
        {
            Assert.InRange(fit.Scale[c], scale[c] - 1e-4f, scale[c] + 1e-4f);
            Assert.InRange(fit.Shift[c], shift[c] - 1e-4f, shift[c] + 1e-4f);
        }
    }

    [Fact]
    public void The_fit_minimises_the_squared_error()
    {
        const int channels = 3;
        var (x, y) = Data(200, [0.9f, 1.1f, 0.7f], [0.1f, -0.2f, 0.05f], noise: 0.8, seed: 2);
        var fit = Fit(x, y, channels);
        double Error(int c, double a, double b)
        {
            double e = 0;
            for (int i = c; i < x.Length; i += channels) e += Math.Pow(a * x[i] + b - y[i], 2);
            return e;
        }
        for (int c = 0; c < channels; c++)
        {
            double best = Error(c, fit.Scale[c], fit.Shift[c]);
            foreach (var (da, db) in new[] { (1e-3, 0.0), (-1e-3, 0.0), (0.0, 1e-3), (0.0, -1e-3), (1e-3, -1e-3) })
                Assert.True(Error(c, fit.Scale[c] + da, fit.Shift[c] + db) > best, $"channel {c}: ({da}, {db}) fits better");
            Assert.True(best < Error(c, 1, 0), $"channel {c}: the fit is no better than reusing unchanged");
        }
    }

    [Fact]
    public void A_constant_cached_channel_keeps_scale_one_and_shifts_by_the_mean_difference()
    {
        float[] x = [2, 2, 2, 2];
        float[] y = [1, 3, 2, 6];
        var fit = Fit(x, y, 1);
        Assert.Equal(1f, fit.Scale[0]);
        Assert.Equal(1f, fit.Shift[0], 6);
    }
}
