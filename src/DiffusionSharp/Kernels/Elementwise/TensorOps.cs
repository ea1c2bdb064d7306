using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Elementwise;

/// <summary>Small memory-bound operations on channels-last tensors.</summary>
public static unsafe class TensorOps
{
    /// <summary>y = a + b, n elements (y may alias a or b).</summary>
    public static void Add(float* a, float* b, float* y, long n)
    {
        long i = 0;
        for (; i <= n - 16; i += 16) (Vector512.Load(a + i) + Vector512.Load(b + i)).Store(y + i);
        for (; i < n; i++) y[i] = a[i] + b[i];
    }

    /// <summary>x[r, c] += v[c] for rows x [rows, cols] (a per-channel bias or an embedding broadcast over pixels).</summary>
    public static void AddRowVector(float* x, long rows, int cols, float* v)
    {
        for (long r = 0; r < rows; r++)
        {
            float* row = x + r * cols;
            int c = 0;
            for (; c <= cols - 16; c += 16) (Vector512.Load(row + c) + Vector512.Load(v + c)).Store(row + c);
            for (; c < cols; c++) row[c] += v[c];
        }
    }

    /// <summary>x *= s, n elements.</summary>
    public static void Scale(float* x, float s, long n)
    {
        var vs = Vector512.Create(s);
        long i = 0;
        for (; i <= n - 16; i += 16) (Vector512.Load(x + i) * vs).Store(x + i);
        for (; i < n; i++) x[i] *= s;
    }

    /// <summary>Channel concatenation of channels-last tensors: y [P, ca + cb] = [a [P, ca] | b [P, cb]].</summary>
    public static void ConcatChannels(float* a, int ca, float* b, int cb, long pixels, float* y)
    {
        int cy = ca + cb;
        for (long p = 0; p < pixels; p++)
        {
            Buffer.MemoryCopy(a + p * ca, y + p * cy, ca * sizeof(float), ca * sizeof(float));
            Buffer.MemoryCopy(b + p * cb, y + p * cy + ca, cb * sizeof(float), cb * sizeof(float));
        }
    }

    /// <summary>Nearest-neighbour 2x upsampling: x [B, H, W, C] -> y [B, 2H, 2W, C].</summary>
    public static void UpsampleNearest2x(float* x, int batch, int h, int w, int c, float* y)
    {
        long rowBytes = (long)c * sizeof(float);
        for (int b = 0; b < batch; b++)
        for (int iy = 0; iy < h; iy++)
        {
            float* src = x + ((long)b * h + iy) * w * c;
            float* dst0 = y + ((long)b * 2 * h + 2 * iy) * 2 * w * c;
            for (int ix = 0; ix < w; ix++)
            {
                Buffer.MemoryCopy(src + (long)ix * c, dst0 + (2L * ix) * c, rowBytes, rowBytes);
                Buffer.MemoryCopy(src + (long)ix * c, dst0 + (2L * ix + 1) * c, rowBytes, rowBytes);
            }
            long outRow = 2L * w * c;
            Buffer.MemoryCopy(dst0, dst0 + outRow, outRow * sizeof(float), outRow * sizeof(float));
        }
    }
}
