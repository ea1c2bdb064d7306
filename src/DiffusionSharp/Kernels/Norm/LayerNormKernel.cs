using System.Runtime.CompilerServices;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Norm;

/// <summary>LayerNorm over the last dimension: x [rows, cols] -> y, biased variance, affine gamma/beta. x and y may alias.</summary>
public static unsafe class LayerNormKernel
{
    public static void Forward(float* x, int rows, int cols, float eps, float* gamma, float* beta, float* y)
    {
        if (KernelSettings.UseReference) { for (int r = 0; r < rows; r++) NormalizeRow(x + (long)r * cols, cols, eps, gamma, beta, y + (long)r * cols); return; }
        var args = new Args { X = x, Cols = cols, Eps = eps, Gamma = gamma, Beta = beta, Y = y };
        ThreadScheduler.Default.For(rows, &Row, &args);
    }

    private struct Args { public float* X; public int Cols; public float Eps; public float* Gamma; public float* Beta; public float* Y; }

    private static void Row(void* context, int r)
    {
        ref Args a = ref Unsafe.AsRef<Args>(context);
        NormalizeRow(a.X + (long)r * a.Cols, a.Cols, a.Eps, a.Gamma, a.Beta, a.Y + (long)r * a.Cols);
    }

    /// <summary>Two-pass statistics in double; serves as both the reference and (for now) the fast path.</summary>
    private static void NormalizeRow(float* x, int n, float eps, float* gamma, float* beta, float* y)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[i];
        double mean = sum / n, sq = 0;
        for (int i = 0; i < n; i++) { double d = x[i] - mean; sq += d * d; }
        double inv = 1.0 / Math.Sqrt(sq / n + eps);
        for (int i = 0; i < n; i++) y[i] = (float)((x[i] - mean) * inv * gamma[i] + beta[i]);
    }
}
