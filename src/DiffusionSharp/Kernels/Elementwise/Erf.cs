using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Elementwise;

/// <summary>The error function (.NET has none): a double reference and a vectorized float version.</summary>
public static class Erf
{
    /// <summary>
    /// erf(x) to about 1e-14: Maclaurin series for |x| &lt; 3, Lentz continued fraction for erfc beyond.
    /// </summary>
    public static double Reference(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double ax = Math.Abs(x);
        if (ax > 6) return Math.Sign(x);
        if (ax < 3)
        {
            double term = x, sum = x, x2 = x * x;
            for (int n = 1; n < 200; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            return 2 / Math.Sqrt(Math.PI) * sum;
        }
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) via modified Lentz.
        double tiny = 1e-300, f = ax, c = ax, d = 0;
        for (int i = 1; i < 500; i++)
        {
            double an = i * 0.5;
            d = ax + an * d; d = Math.Abs(d) < tiny ? tiny : d; d = 1 / d;
            c = ax + an / c; c = Math.Abs(c) < tiny ? tiny : c;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        double erfc = Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        return Math.Sign(x) * (1 - erfc);
    }

    /// <summary>
    /// Abramowitz and Stegun 7.1.26: erf(x) = 1 - poly(t) exp(-x^2), t = 1/(1 + p|x|), sign restored.
    /// Max absolute error 1.5e-7, below float resolution for GELU's use.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Fast(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(0.3275911f) * ax);
        var poly = Vector512.FusedMultiplyAdd(Vector512.Create(1.061405429f), t, Vector512.Create(-1.453152027f));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(1.421413741f));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(-0.284496736f));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(0.254829592f));
        poly *= t;
        var y = Vector512<float>.One - poly * VectorMath.Exp(-ax * ax);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -y, y);
    }
}
