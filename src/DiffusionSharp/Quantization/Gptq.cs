namespace DiffusionSharp.Quantization;

/// <summary>
/// GPTQ (Frantar, Ashkboos, Hoefler and Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for Generative
/// Pre-trained Transformers", Algorithm 1) for the int4 group quantizer of <see cref="WeightQuantizer.Int4Groups"/>:
/// the columns of W [N, K] are quantized one at a time, in order, and each column's rounding error is spread over the
/// columns not yet quantized through the inverse Hessian of the layer's output error, H = Xᵀ X over calibration rows X
/// [rows, K]. The result minimizes ‖X Wᵀ − X Qᵀ‖² far better than rounding each weight to its nearest code, with the
/// same codes and scales format (nothing changes at run time). SVDQuant's authors report it on the low-rank residual
/// ("SVDQ+GPTQ": FLUX.1-dev PSNR 20.1 → 21.0 dB; research/svdquant.md §2.3).
/// <para>As in the authors' code: dead inputs (H_ii = 0) get H_ii = 1; H gets a damping of <c>damp</c> times the mean
/// of its diagonal; U is the upper Cholesky factor of H⁻¹ (so the per-column updates are rows of U); the scales of a
/// group are taken from the group's weights as updated when its first column is reached ("static_groups" off), rounded
/// to fp16 like <see cref="WeightQuantizer.Int4Groups"/>'s. Costs O(rows K² + K³) once per set of inputs
/// (<see cref="Prepare"/>), then O(N K²) per weight quantized with it, in float64.</para>
/// </summary>
public static class Gptq
{
    /// <summary>U, the upper Cholesky factor of the damped inverse Hessian of inputs of width <see cref="K"/>.</summary>
    public sealed class Factor
    {
        internal Factor(int k, double[] u) => (K, U) = (k, u);
        public int K { get; }
        internal double[] U { get; }
    }

    /// <summary>The factor for inputs <paramref name="x"/> [rows, K]: computed once, shared by every weight quantized against them.</summary>
    public static Factor Prepare(ReadOnlySpan<double> x, int rows, int k, double damp = 0.01)
    {
        if (k <= 0 || rows <= 0 || x.Length != (long)rows * k) throw new ArgumentException($"[{rows}, {k}] inputs need {(long)rows * k} values, got {x.Length}.");
        return new Factor(k, InverseHessianFactor(Hessian(x, rows, k), k, damp));
    }

    /// <param name="w">[N, K] weights (not modified).</param>
    /// <param name="x">[rows, K] calibration inputs, row-major, as the layer's weight multiplies them.</param>
    public static (sbyte[] Codes, float[] Scales) Int4Groups(ReadOnlySpan<double> w, int n, int k, int group, ReadOnlySpan<double> x, int rows, double damp = 0.01)
        => Int4Groups(w, n, k, group, Prepare(x, rows, k, damp));

    public static (sbyte[] Codes, float[] Scales) Int4Groups(ReadOnlySpan<double> w, int n, int k, int group, Factor factor)
    {
        if (n <= 0 || k <= 0 || w.Length != (long)n * k) throw new ArgumentException($"A [{n}, {k}] weight needs {(long)n * k} values, got {w.Length}.");
        if (factor.K != k) throw new ArgumentException($"The GPTQ factor is for {factor.K} inputs, the weight has {k}.", nameof(factor));
        if (group <= 0) throw new ArgumentOutOfRangeException(nameof(group), group, "The group size must be positive.");
        var u = factor.U;
        var work = w.ToArray();
        int groups = (k + group - 1) / group;
        var codes = new sbyte[n * k];
        var scales = new float[n * groups];
        var error = new double[n];
        for (int i = 0; i < k; i++)
        {
            if (i % group == 0)
            {
                int g = i / group, end = Math.Min(k, i + group);
                for (int o = 0; o < n; o++)
                {
                    double amax = 0;
                    for (int j = i; j < end; j++) amax = Math.Max(amax, Math.Abs(work[(long)o * k + j]));
                    scales[o * groups + g] = (float)(Half)(amax / 7);
                }
            }
            double d = u[(long)i * k + i];
            for (int o = 0; o < n; o++)
            {
                double v = work[(long)o * k + i];
                float s = scales[o * groups + i / group];
                sbyte q = s == 0 || !double.IsFinite(v / s) ? (sbyte)0 : (sbyte)Math.Clamp(Math.Round(v / s, MidpointRounding.ToEven), -8, 7);
                codes[o * k + i] = q;
                error[o] = (v - q * (double)s) / d;
            }
            var ui = u.AsSpan(i * k, k);
            for (int o = 0; o < n; o++)
            {
                double e = error[o];
                if (e == 0) continue;
                var row = work.AsSpan(o * k, k);
                for (int j = i + 1; j < k; j++) row[j] -= e * ui[j];
            }
        }
        return (codes, scales);
    }

    /// <summary>H = Xᵀ X [K, K] (only the upper triangle is used).</summary>
    private static double[] Hessian(ReadOnlySpan<double> x, int rows, int k)
    {
        var h = new double[(long)k * k];
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * k, k);
            for (int i = 0; i < k; i++)
            {
                double xi = xr[i];
                if (xi == 0) continue;
                var hi = h.AsSpan(i * k, k);
                for (int j = i; j < k; j++) hi[j] += xi * xr[j];
            }
        }
        return h;
    }

    /// <summary>U upper triangular with Uᵀ U = (H + damping)⁻¹, [K, K] row-major.</summary>
    private static double[] InverseHessianFactor(double[] h, int k, double damp)
    {
        double mean = 0;
        for (int i = 0; i < k; i++)
        {
            if (h[(long)i * k + i] == 0) h[(long)i * k + i] = 1;
            mean += h[(long)i * k + i];
        }
        mean /= k;
        for (int i = 0; i < k; i++) h[(long)i * k + i] += damp * mean;
        for (int i = 0; i < k; i++)
        for (int j = 0; j < i; j++) h[(long)i * k + j] = h[(long)j * k + i];

        var l = Cholesky(h, k);                     // H = L Lᵀ
        var inverse = LowerInverse(l, k);           // L⁻¹
        var hinv = new double[(long)k * k];         // H⁻¹ = L⁻ᵀ L⁻¹
        for (int i = 0; i < k; i++)
        for (int j = 0; j <= i; j++)
        {
            double s = 0;
            for (int m = i; m < k; m++) s += inverse[(long)m * k + i] * inverse[(long)m * k + j];
            hinv[(long)i * k + j] = s;
            hinv[(long)j * k + i] = s;
        }
        var lower = Cholesky(hinv, k);              // H⁻¹ = L' L'ᵀ, so U = L'ᵀ
        var u = new double[(long)k * k];
        for (int i = 0; i < k; i++)
        for (int j = 0; j <= i; j++) u[(long)j * k + i] = lower[(long)i * k + j];
        return u;
    }

    /// <summary>The lower Cholesky factor of a symmetric positive definite [K, K] matrix.</summary>
    private static double[] Cholesky(double[] a, int k)
    {
        var l = new double[(long)k * k];
        for (int i = 0; i < k; i++)
        {
            var li = l.AsSpan(i * k, k);
            for (int j = 0; j <= i; j++)
            {
                var lj = l.AsSpan(j * k, k);
                double s = a[(long)i * k + j];
                for (int m = 0; m < j; m++) s -= li[m] * lj[m];
                if (i == j)
                {
                    if (!(s > 0)) throw new ArithmeticException($"The damped Hessian is not positive definite (pivot {i} is {s}).");
                    li[i] = Math.Sqrt(s);
                }
                else li[j] = s / lj[j];
            }
        }
        return l;
    }

    /// <summary>L⁻¹ of a lower triangular [K, K] matrix (lower triangular).</summary>
    private static double[] LowerInverse(double[] l, int k)
    {
        var inv = new double[(long)k * k];
        for (int j = 0; j < k; j++)
        {
            inv[(long)j * k + j] = 1 / l[(long)j * k + j];
            for (int i = j + 1; i < k; i++)
            {
                double s = 0;
                for (int m = j; m < i; m++) s += l[(long)i * k + m] * inv[(long)m * k + j];
                inv[(long)i * k + j] = -s / l[(long)i * k + i];
            }
        }
        return inv;
    }
}
