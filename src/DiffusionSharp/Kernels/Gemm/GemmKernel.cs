namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// C = A · Wᵀ + bias (+ residual): the linear layer, and through im2col-free packing the 1x1 convolution.
/// A is row-major [M, K] with row stride <c>lda</c>; W is a <see cref="PackedMatrix"/> [N, K]; C is [M, N] with
/// row stride <c>ldc</c>. <c>bias</c> [N] and <c>residual</c> [M, N] (row stride <c>ldr</c>, may alias C) are optional.
/// Rows of C are independent, so any split over M gives bitwise-identical results.
/// </summary>
public static unsafe partial class GemmKernel
{
    public static void Linear(float* a, int lda, int m, PackedMatrix w, float* bias, float* c, int ldc,
        float* residual = null, int ldr = 0)
    {
        if (m == 0) return;
        if (lda < w.K || ldc < w.N || (residual != null && ldr < w.N))
            throw new ArgumentException($"GEMM strides too small: lda {lda} (K {w.K}), ldc {ldc}, ldr {ldr} (N {w.N}).");
        if (KernelSettings.UseReference) LinearReference(a, lda, m, w, bias, c, ldc, residual, ldr);
        else LinearFast(a, lda, m, w, bias, c, ldc, residual, ldr);
    }

    /// <summary>
    /// C = alpha · A · Bᵀ with A [M, K] (lda) and B [N, K] (ldb) both unpacked row-major; C [M, N] (ldc).
    /// Used between activations (attention scores), where packing once does not pay.
    /// </summary>
    public static void MultiplyTransposed(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        if (KernelSettings.UseReference) MultiplyTransposedReference(a, lda, b, ldb, c, ldc, m, n, k, alpha);
        else MultiplyTransposedFast(a, lda, b, ldb, c, ldc, m, n, k, alpha);
    }

    /// <summary>C = alpha · A · B with A [M, K] (lda), B [K, N] (ldb), C [M, N] (ldc), all row-major, unpacked.</summary>
    public static void Multiply(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        if (KernelSettings.UseReference) MultiplyReference(a, lda, b, ldb, c, ldc, m, n, k, alpha);
        else MultiplyFast(a, lda, b, ldb, c, ldc, m, n, k, alpha);
    }
}
