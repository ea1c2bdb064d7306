namespace DiffusionSharp.Kernels.Gemm;

/// <summary>Scalar reference GEMMs: the spec and test oracle. Accumulate in double.</summary>
public static unsafe partial class GemmKernel
{
    public static void LinearReference(float* a, int lda, int m, PackedMatrix w, float* bias, float* c, int ldc,
        float* residual, int ldr, float* imageBias = null, int imageRows = 0)
    {
        for (int i = 0; i < m; i++)
        for (int j = 0; j < w.N; j++)
        {
            double sum = bias != null ? bias[j] : 0.0;
            if (imageBias != null) sum += imageBias[(long)(i / imageRows) * w.N + j];
            for (int p = 0; p < w.K; p++) sum += (double)a[(long)i * lda + p] * w[j, p];
            if (residual != null) sum += residual[(long)i * ldr + j];
            c[(long)i * ldc + j] = (float)sum;
        }
    }

    public static void MultiplyTransposedReference(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++) sum += (double)a[(long)i * lda + p] * b[(long)j * ldb + p];
            c[(long)i * ldc + j] = (float)(alpha * sum);
        }
    }

    public static void MultiplyReference(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, float alpha)
    {
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++) sum += (double)a[(long)i * lda + p] * b[(long)p * ldb + j];
            c[(long)i * ldc + j] = (float)(alpha * sum);
        }
    }
}
