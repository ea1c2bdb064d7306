namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// C = A · Wᵀ + bias (+ residual): the linear layer, and through im2col-free packing the 1x1 convolution.
/// A is row-major [M, K] with row stride <c>lda</c>; W is a <see cref="PackedMatrix"/> [N, K] (fp32 or 16-bit storage,
/// fp32 arithmetic either way); C is [M, N] with
/// row stride <c>ldc</c>. <c>bias</c> [N] and <c>residual</c> [M, N] (row stride <c>ldr</c>, may alias C) are optional;
/// C must not overlap A. Every output is computed the same way whatever the thread count: results are bitwise
/// deterministic.
/// </summary>
public static unsafe partial class GemmKernel
{
    public static void Linear(float* a, int lda, int m, PackedMatrix w, float* bias, float* c, int ldc,
        float* residual = null, int ldr = 0)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "GEMM row count cannot be negative.");
        if (m == 0) return;
        if (lda < w.K || ldc < w.N || (residual != null && ldr < w.N))
            throw new ArgumentException($"GEMM strides too small: lda {lda} (K {w.K}), ldc {ldc}, ldr {ldr} (N {w.N}).");
        if (KernelSettings.UseReference) LinearReference(a, lda, m, w, bias, c, ldc, residual, ldr);
        else Linear(a, lda, m, w, bias, c, ldc, residual, ldr, KernelSettings.BestIsa);
    }

    /// <summary>The fast linear layer on a chosen instruction-set path (tests sweep every supported one).</summary>
    internal static void Linear(float* a, int lda, int m, PackedMatrix w, float* bias, float* c, int ldc,
        float* residual, int ldr, KernelIsa isa)
    {
        var problem = new Problem<RowMajorRows>(new RowMajorRows(a, lda), m, w.N, w.K, w, 1f, bias, c, ldc, residual, ldr);
        Run(ref problem, isa);
    }

    /// <summary>
    /// C = alpha · A · Bᵀ with A [M, K] (lda) and B [N, K] (ldb) both unpacked row-major; C [M, N] (ldc).
    /// For products between activations; B is packed into per-thread scratch on each call.
    /// </summary>
    public static void MultiplyTransposed(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        ValidatePlain(lda, ldb, ldc, m, n, k, ldbMin: k);
        if (KernelSettings.UseReference) MultiplyTransposedReference(a, lda, b, ldb, c, ldc, m, n, k, alpha);
        else MultiplyTransposed(a, lda, b, ldb, c, ldc, m, n, k, alpha, KernelSettings.BestIsa);
    }

    /// <summary>C = alpha · A · B with A [M, K] (lda), B [K, N] (ldb), C [M, N] (ldc), all row-major, unpacked.</summary>
    public static void Multiply(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        ValidatePlain(lda, ldb, ldc, m, n, k, ldbMin: n);
        if (KernelSettings.UseReference) MultiplyReference(a, lda, b, ldb, c, ldc, m, n, k, alpha);
        else Multiply(a, lda, b, ldb, c, ldc, m, n, k, alpha, KernelSettings.BestIsa);
    }

    internal static void MultiplyTransposed(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha, KernelIsa isa)
    {
        if (m == 0 || n == 0) return;
        if (k == 0) { Zero(c, ldc, m, n); return; }
        int panels = (n + MicroKernel.Cols - 1) / MicroKernel.Cols;
        float* packed = Scratch.Floats(ScratchSlot.GemmB, (long)panels * MicroKernel.Cols * k);
        for (int row = 0; row < panels * MicroKernel.Cols; row++)
        {
            float* panel = packed + (long)(row / MicroKernel.Cols) * MicroKernel.Cols * k;
            int lane = row % MicroKernel.Cols;
            float* src = b + (long)row * ldb;
            if (row < n)
                for (int p = 0; p < k; p++) panel[(long)p * MicroKernel.Cols + lane] = src[p];
            else
                for (int p = 0; p < k; p++) panel[(long)p * MicroKernel.Cols + lane] = 0f;
        }
        var problem = new Problem<RowMajorRows>(new RowMajorRows(a, lda), m, n, k, packed, alpha, null, c, ldc, null, 0);
        Run(ref problem, isa);
    }

    internal static void Multiply(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha, KernelIsa isa)
    {
        if (m == 0 || n == 0) return;
        if (k == 0) { Zero(c, ldc, m, n); return; }
        int panels = (n + MicroKernel.Cols - 1) / MicroKernel.Cols;
        float* packed = Scratch.Floats(ScratchSlot.GemmB, (long)panels * MicroKernel.Cols * k);
        for (int panel = 0; panel < panels; panel++)
        {
            int col0 = panel * MicroKernel.Cols;
            int cols = Math.Min(MicroKernel.Cols, n - col0);
            for (int p = 0; p < k; p++)
            {
                float* dst = packed + ((long)panel * k + p) * MicroKernel.Cols;
                new ReadOnlySpan<float>(b + (long)p * ldb + col0, cols).CopyTo(new Span<float>(dst, cols));
                new Span<float>(dst + cols, MicroKernel.Cols - cols).Clear();
            }
        }
        var problem = new Problem<RowMajorRows>(new RowMajorRows(a, lda), m, n, k, packed, alpha, null, c, ldc, null, 0);
        Run(ref problem, isa);
    }

    private static void ValidatePlain(int lda, int ldb, int ldc, int m, int n, int k, int ldbMin)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"GEMM sizes cannot be negative: M {m}, N {n}, K {k}.");
        if (lda < k || ldb < ldbMin || ldc < n)
            throw new ArgumentException($"GEMM strides too small: lda {lda} (K {k}), ldb {ldb} (needs {ldbMin}), ldc {ldc} (N {n}).");
    }

    private static void Zero(float* c, int ldc, int m, int n)
    {
        for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
    }
}
