using System.Globalization;
using System.Text;

namespace DiffusionSharp.Tests.Support;

/// <summary>
/// The one tolerance policy of the test suite: an element passes when |actual - expected| &lt;= atol + rtol * |expected|.
/// NaN or infinity never passes, on either side. Failures name the worst element and how many failed.
/// </summary>
public static class Tolerance
{
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        if (expected.Length != actual.Length)
            throw new Xunit.Sdk.XunitException($"{what}: expected {expected.Length} values, got {actual.Length}.");
        int bad = 0, worst = -1;
        double worstExcess = double.NegativeInfinity, maxAbs = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double diff = Math.Abs(a - e);
            bool ok = double.IsFinite(e) && double.IsFinite(a) && diff <= atol + rtol * Math.Abs(e);
            if (double.IsFinite(diff)) maxAbs = Math.Max(maxAbs, diff);
            if (!ok)
            {
                bad++;
                double excess = double.IsFinite(diff) ? diff - (atol + rtol * Math.Abs(e)) : double.PositiveInfinity;
                if (excess > worstExcess) { worstExcess = excess; worst = i; }
            }
        }
        if (bad == 0) return;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"{what}: {bad} of {expected.Length} elements outside atol={atol:G3}, rtol={rtol:G3}; ");
        sb.Append(CultureInfo.InvariantCulture,
            $"worst at [{worst}]: expected {expected[worst]:G9}, got {actual[worst]:G9}; max |diff| over finite values {maxAbs:G4}.");
        throw new Xunit.Sdk.XunitException(sb.ToString());
    }

    public static void AssertClose(float[] expected, float[] actual, double atol, double rtol, string what)
        => AssertClose(expected.AsSpan(), actual.AsSpan(), atol, rtol, what);
}
