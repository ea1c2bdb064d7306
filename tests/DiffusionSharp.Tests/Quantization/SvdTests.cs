using DiffusionSharp.Quantization;

namespace DiffusionSharp.Tests.Quantization;

/// <summary>The float64 SVDs against numpy.linalg.svd, and the algebra they promise (orthonormal factors, A = U S Vᵀ).</summary>
public class SvdTests
{
    [Fact]
    public void Jacobi_matches_numpy_and_reconstructs_exactly()
    {
        using var f = new QuantFixture();
        var a = f.Doubles("svd.small");
        var expected = f.Doubles("svd.small_s");
        foreach (bool transposed in new[] { false, true })
        {
            var m = transposed ? Transpose(a, 40, 30) : a;
            int rows = transposed ? 30 : 40, cols = transposed ? 40 : 30;
            var svd = Svd.Jacobi(m, rows, cols);
            Assert.Equal(30, svd.Rank);
            for (int i = 0; i < 30; i++) Assert.True(Math.Abs(svd.S[i] - expected[i]) <= 1e-12 * expected[0], $"s[{i}] {svd.S[i]} vs {expected[i]}");
            AssertOrthonormal(svd.U, rows, 30);
            AssertOrthonormal(svd.V, cols, 30);
            Assert.True(ReconstructionError(m, svd) <= 1e-12 * expected[0]);
        }
    }

    [Fact]
    public void Truncated_top_32_matches_numpy_and_is_near_optimal()
    {
        using var f = new QuantFixture();
        var a = f.Doubles("svd.big");
        var expected = f.Doubles("svd.big_s");
        var svd = Svd.Truncated(a, 300, 200, 32);
        for (int i = 0; i < 32; i++) Assert.True(Math.Abs(svd.S[i] - expected[i]) <= 1e-9 * expected[0], $"s[{i}] {svd.S[i]} vs {expected[i]}");
        AssertOrthonormal(svd.U, 300, 32);
        AssertOrthonormal(svd.V, 200, 32);
        // Eckart-Young: the best rank-32 error is sqrt(sum of the other squared singular values).
        var all = Svd.Jacobi(a, 300, 200).S;
        double optimal = Math.Sqrt(all.Skip(32).Sum(s => s * s));
        Assert.True(ReconstructionError(a, svd) <= optimal * (1 + 1e-9), $"{ReconstructionError(a, svd)} vs optimal {optimal}");
    }

    [Fact]
    public void Bad_input_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Svd.Jacobi([1, double.NaN], 1, 2));
        Assert.Throws<ArgumentException>(() => Svd.Jacobi([1, 2, 3], 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Svd.Truncated([1, 2, 3, 4], 2, 2, 3));
    }

    private static double ReconstructionError(double[] a, SvdResult svd)
    {
        double sum = 0;
        for (int i = 0; i < svd.Rows; i++)
        for (int j = 0; j < svd.Cols; j++)
        {
            double v = 0;
            for (int r = 0; r < svd.Rank; r++) v += svd.U[i * svd.Rank + r] * svd.S[r] * svd.V[j * svd.Rank + r];
            double d = a[i * svd.Cols + j] - v;
            sum += d * d;
        }
        return Math.Sqrt(sum);
    }

    private static void AssertOrthonormal(double[] m, int rows, int cols)
    {
        for (int p = 0; p < cols; p++)
        for (int q = 0; q < cols; q++)
        {
            double d = 0;
            for (int i = 0; i < rows; i++) d += m[i * cols + p] * m[i * cols + q];
            Assert.True(Math.Abs(d - (p == q ? 1 : 0)) <= 1e-10, $"columns {p}, {q}: {d}");
        }
    }

    private static double[] Transpose(double[] a, int rows, int cols)
    {
        var t = new double[a.Length];
        for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            t[j * rows + i] = a[i * cols + j];
        return t;
    }
}
