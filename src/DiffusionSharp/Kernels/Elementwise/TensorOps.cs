using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Elementwise;

/// <summary>
/// Small memory-bound operations on channels-last tensors; vectorized, and split over threads in fixed chunks when
/// large (bitwise identical for any thread count: each element is computed the same way by whichever thread).
/// </summary>
public static unsafe class TensorOps
{
    /// <summary>y = a + b, n elements (y may alias a or b).</summary>
    public static void Add(float* a, float* b, float* y, long n)
    {
        var body = new AddBody { A = a, B = b, Y = y };
        RangeParallel.For(n, RangeParallel.DefaultGrain, ref body);
    }

    private struct AddBody : RangeParallel.IRangeBody
    {
        public float* A, B, Y;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            long i = start;
            for (; i <= end - 16; i += 16) (Vector512.Load(A + i) + Vector512.Load(B + i)).Store(Y + i);
            for (; i < end; i++) Y[i] = A[i] + B[i];
        }
    }

    /// <summary>y[r, c] = a[r, c] · b[r, c] over [rows, cols] blocks with row strides lda, ldb, ldy (y may alias a or b).</summary>
    public static void Multiply(float* a, int lda, float* b, int ldb, int rows, int cols, float* y, int ldy)
    {
        if (rows < 0 || cols < 0 || lda < cols || ldb < cols || ldy < cols)
            throw new ArgumentException($"Multiply: invalid shape [{rows}, {cols}] with strides {lda}, {ldb}, {ldy}.");
        if (cols == 0) return;
        var body = new MultiplyBody { A = a, Lda = lda, B = b, Ldb = ldb, Y = y, Ldy = ldy, Cols = cols };
        RangeParallel.For(rows, Math.Max(1, RangeParallel.DefaultGrain / cols), ref body);
    }

    private struct MultiplyBody : RangeParallel.IRangeBody
    {
        public float* A, B, Y;
        public int Lda, Ldb, Ldy, Cols;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            for (long r = start; r < end; r++)
            {
                float* a = A + r * Lda, b = B + r * Ldb, y = Y + r * Ldy;
                int c = 0;
                for (; c <= Cols - 16; c += 16) (Vector512.Load(a + c) * Vector512.Load(b + c)).Store(y + c);
                for (; c < Cols; c++) y[c] = a[c] * b[c];
            }
        }
    }

    /// <summary>x[r, c] += v[c] for rows x [rows, cols] (a per-channel bias or an embedding broadcast over pixels).</summary>
    public static void AddRowVector(float* x, long rows, int cols, float* v)
    {
        if (cols <= 0) return;
        var body = new AddRowVectorBody { X = x, Cols = cols, V = v };
        RangeParallel.For(rows, Math.Max(1, RangeParallel.DefaultGrain / cols), ref body);
    }

    private struct AddRowVectorBody : RangeParallel.IRangeBody
    {
        public float* X, V;
        public int Cols;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            for (long r = start; r < end; r++)
            {
                float* row = X + r * Cols;
                int c = 0;
                for (; c <= Cols - 16; c += 16) (Vector512.Load(row + c) + Vector512.Load(V + c)).Store(row + c);
                for (; c < Cols; c++) row[c] += V[c];
            }
        }
    }

    /// <summary>x *= s, n elements.</summary>
    public static void Scale(float* x, float s, long n)
    {
        var body = new ScaleBody { X = x, S = s };
        RangeParallel.For(n, RangeParallel.DefaultGrain, ref body);
    }

    private struct ScaleBody : RangeParallel.IRangeBody
    {
        public float* X;
        public float S;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            var vs = Vector512.Create(S);
            long i = start;
            for (; i <= end - 16; i += 16) (Vector512.Load(X + i) * vs).Store(X + i);
            for (; i < end; i++) X[i] *= S;
        }
    }

    /// <summary>Channel concatenation of channels-last tensors: y [P, ca + cb] = [a [P, ca] | b [P, cb]].</summary>
    public static void ConcatChannels(float* a, int ca, float* b, int cb, long pixels, float* y)
    {
        if (ca < 0 || cb < 0) throw new ArgumentException($"ConcatChannels: negative channel count ({ca}, {cb}).");
        if (ca + cb == 0) return;
        var body = new ConcatBody { A = a, Ca = ca, B = b, Cb = cb, Y = y };
        RangeParallel.For(pixels, Math.Max(1, RangeParallel.DefaultGrain / (ca + cb)), ref body);
    }

    private struct ConcatBody : RangeParallel.IRangeBody
    {
        public float* A, B, Y;
        public int Ca, Cb;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            int cy = Ca + Cb;
            for (long p = start; p < end; p++)
            {
                Buffer.MemoryCopy(A + p * Ca, Y + p * cy, Ca * sizeof(float), Ca * sizeof(float));
                Buffer.MemoryCopy(B + p * Cb, Y + p * cy + Ca, Cb * sizeof(float), Cb * sizeof(float));
            }
        }
    }

    /// <summary>Nearest-neighbour 2x upsampling: x [B, H, W, C] -> y [B, 2H, 2W, C].</summary>
    public static void UpsampleNearest2x(float* x, int batch, int h, int w, int c, float* y)
    {
        if (batch < 0 || h < 0 || w < 0 || c < 0) throw new ArgumentException($"UpsampleNearest2x: invalid shape [{batch}, {h}, {w}, {c}].");
        if ((long)w * c == 0) return;
        var body = new UpsampleBody { X = x, W = w, C = c, Y = y };
        RangeParallel.For((long)batch * h, Math.Max(1, RangeParallel.DefaultGrain / (4L * w * c)), ref body);
    }

    private struct UpsampleBody : RangeParallel.IRangeBody
    {
        public float* X, Y;
        public int W, C;

        /// <summary>Input rows [start, end) of all images stacked: input row i becomes output rows 2i and 2i + 1.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            long rowBytes = (long)C * sizeof(float), outRow = 2L * W * C;
            for (long i = start; i < end; i++)
            {
                float* src = X + i * W * C;
                float* dst0 = Y + 2 * i * outRow;
                for (int ix = 0; ix < W; ix++)
                {
                    Buffer.MemoryCopy(src + (long)ix * C, dst0 + 2L * ix * C, rowBytes, rowBytes);
                    Buffer.MemoryCopy(src + (long)ix * C, dst0 + (2L * ix + 1) * C, rowBytes, rowBytes);
                }
                Buffer.MemoryCopy(dst0, dst0 + outRow, outRow * sizeof(float), outRow * sizeof(float));
            }
        }
    }
}
