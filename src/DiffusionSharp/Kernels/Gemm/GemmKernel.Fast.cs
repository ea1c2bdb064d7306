using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// Vectorized, multi-threaded GEMMs. Linear: 4-row x 16-column register tiles over the packed panels (Vector512,
/// emulated by two Vector256 where AVX-512 is missing), tiles split across threads by row block.
/// </summary>
public static unsafe partial class GemmKernel
{
    private const int RowBlock = 4;

    private struct LinearArgs
    {
        public float* A; public int Lda; public int M;
        public float* W; public int N; public int K; public int Panels;
        public float* Bias; public float* C; public int Ldc; public float* Residual; public int Ldr;
    }

    private static void LinearFast(float* a, int lda, int m, PackedMatrix w, float* bias, float* c, int ldc, float* residual, int ldr)
    {
        var args = new LinearArgs
        {
            A = a, Lda = lda, M = m, W = w.Data, N = w.N, K = w.K, Panels = w.PanelCount,
            Bias = bias, C = c, Ldc = ldc, Residual = residual, Ldr = ldr,
        };
        int rowBlocks = (m + RowBlock - 1) / RowBlock;
        ThreadScheduler.Default.For(rowBlocks, &LinearRowBlock, &args);
    }

    private static void LinearRowBlock(void* context, int block)
    {
        ref LinearArgs g = ref Unsafe.AsRef<LinearArgs>(context);
        int row0 = block * RowBlock;
        int rows = Math.Min(RowBlock, g.M - row0);
        float* a0 = g.A + (long)row0 * g.Lda;
        float* a1 = rows > 1 ? a0 + g.Lda : a0;
        float* a2 = rows > 2 ? a1 + g.Lda : a1;
        float* a3 = rows > 3 ? a2 + g.Lda : a2;
        float* res = g.Residual != null ? g.Residual + (long)row0 * g.Ldr : null;
        RowsTimesPanels(a0, a1, a2, a3, rows, g.K, g.W, g.N, g.Panels, g.Bias, g.C + (long)row0 * g.Ldc, g.Ldc, res, g.Ldr);
    }

    /// <summary>
    /// Up to four rows of A (a0..a3, each K long; unused ones may repeat a valid row) times every panel:
    /// c[r, :] = a_r · Wᵀ + bias (+ residual[r, :]). The micro-kernel shared by linear and convolution.
    /// </summary>
    internal static void RowsTimesPanels(float* a0, float* a1, float* a2, float* a3, int rows, int k,
        float* panels, int n, int panelCount, float* bias, float* c, int ldc, float* residual, int ldr)
    {
        float* t = stackalloc float[RowBlock * PackedMatrix.PanelWidth];
        for (int p = 0; p < panelCount; p++)
        {
            float* panel = panels + (long)p * PackedMatrix.PanelWidth * k;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
            for (int q = 0; q < k; q++)
            {
                var b = Vector512.Load(panel + (long)q * PackedMatrix.PanelWidth);
                c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[q]), b, c0);
                c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[q]), b, c1);
                c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[q]), b, c2);
                c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[q]), b, c3);
            }
            int col0 = p * PackedMatrix.PanelWidth;
            int cols = Math.Min(PackedMatrix.PanelWidth, n - col0);
            c0.Store(t); c1.Store(t + 16); c2.Store(t + 32); c3.Store(t + 48);
            for (int r = 0; r < rows; r++)
            {
                float* dst = c + (long)r * ldc + col0;
                float* res = residual != null ? residual + (long)r * ldr + col0 : null;
                for (int j = 0; j < cols; j++)
                {
                    float v = t[r * 16 + j];
                    if (bias != null) v += bias[col0 + j];
                    if (res != null) v += res[j];
                    dst[j] = v;
                }
            }
        }
    }

    private struct PlainArgs
    {
        public float* A; public int Lda; public float* B; public int Ldb; public float* C; public int Ldc;
        public int M; public int N; public int K; public float Alpha;
    }

    private static void MultiplyTransposedFast(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        var args = new PlainArgs { A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc, M = m, N = n, K = k, Alpha = alpha };
        ThreadScheduler.Default.For(m, &MultiplyTransposedRow, &args);
    }

    private static void MultiplyTransposedRow(void* context, int i)
    {
        ref PlainArgs g = ref Unsafe.AsRef<PlainArgs>(context);
        float* ai = g.A + (long)i * g.Lda;
        for (int j = 0; j < g.N; j++)
            g.C[(long)i * g.Ldc + j] = g.Alpha * Dot(ai, g.B + (long)j * g.Ldb, g.K);
    }

    private static void MultiplyFast(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        var args = new PlainArgs { A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc, M = m, N = n, K = k, Alpha = alpha };
        ThreadScheduler.Default.For(m, &MultiplyRow, &args);
    }

    private static void MultiplyRow(void* context, int i)
    {
        ref PlainArgs g = ref Unsafe.AsRef<PlainArgs>(context);
        float* ci = g.C + (long)i * g.Ldc;
        new Span<float>(ci, g.N).Clear();
        for (int p = 0; p < g.K; p++)
            Axpy(g.Alpha * g.A[(long)i * g.Lda + p], g.B + (long)p * g.Ldb, ci, g.N);
    }

    internal static float Dot(float* x, float* y, int n)
    {
        var acc = Vector256<float>.Zero;
        int i = 0;
        for (; i <= n - 8; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), acc);
        float sum = Vector256.Sum(acc);
        for (; i < n; i++) sum += x[i] * y[i];
        return sum;
    }

    internal static void Axpy(float alpha, float* x, float* y, int n)
    {
        var va = Vector256.Create(alpha);
        int i = 0;
        for (; i <= n - 8; i += 8) Vector256.FusedMultiplyAdd(va, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        for (; i < n; i++) y[i] += alpha * x[i];
    }
}
