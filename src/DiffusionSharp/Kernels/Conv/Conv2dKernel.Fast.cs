using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// Implicit GEMM: four output pixels at a time, their (ky, kx, ci) patches gathered into a per-thread scratch row
/// block, then the shared GEMM micro-kernel over the packed filters. 1x1 stride-1 unpadded convolutions are a
/// plain GEMM over the pixels.
/// </summary>
public static unsafe partial class Conv2dKernel
{
    private const int PixelBlock = 4;

    [ThreadStatic] private static float* t_scratch;
    [ThreadStatic] private static int t_scratchLength;

    private struct ConvArgs
    {
        public float* X; public Conv2dGeometry G; public float* W; public int Panels;
        public float* Bias; public float* Y; public float* Residual;
    }

    private static void ForwardFast(float* x, in Conv2dGeometry g, ConvolutionWeights w, float* bias, float* y, float* residual)
    {
        if (g.KernelHeight == 1 && g.KernelWidth == 1 && g.StrideH == 1 && g.StrideW == 1 &&
            g.PadTop == 0 && g.PadLeft == 0 && g.PadBottom == 0 && g.PadRight == 0)
        {
            GemmKernel.Linear(x, g.InChannels, checked((int)g.OutputPixels), w.Matrix, bias, y, g.OutChannels, residual, g.OutChannels);
            return;
        }
        var args = new ConvArgs { X = x, G = g, W = w.Matrix.Data, Panels = w.Matrix.PanelCount, Bias = bias, Y = y, Residual = residual };
        int blocks = checked((int)((g.OutputPixels + PixelBlock - 1) / PixelBlock));
        ThreadScheduler.Default.For(blocks, &PixelBlockBody, &args);
    }

    private static void PixelBlockBody(void* context, int block)
    {
        ref ConvArgs a = ref Unsafe.AsRef<ConvArgs>(context);
        ref readonly Conv2dGeometry g = ref a.G;
        int k = g.PatchSize;
        float* scratch = Scratch(PixelBlock * k);
        long pixel0 = (long)block * PixelBlock;
        int rows = (int)Math.Min(PixelBlock, g.OutputPixels - pixel0);
        for (int r = 0; r < rows; r++) Gather(a.X, g, pixel0 + r, scratch + (long)r * k);
        float* r0 = scratch, r1 = rows > 1 ? r0 + k : r0, r2 = rows > 2 ? r0 + 2 * k : r1, r3 = rows > 3 ? r0 + 3 * k : r2;
        float* res = a.Residual != null ? a.Residual + pixel0 * g.OutChannels : null;
        GemmKernel.RowsTimesPanels(r0, r1, r2, r3, rows, k, a.W, g.OutChannels, a.Panels, a.Bias,
            a.Y + pixel0 * g.OutChannels, g.OutChannels, res, g.OutChannels);
    }

    /// <summary>Copies the (ky, kx, ci) patch of output pixel <paramref name="pixel"/> into <paramref name="row"/>, zeros outside.</summary>
    private static void Gather(float* x, in Conv2dGeometry g, long pixel, float* row)
    {
        int wo = g.OutWidth, ho = g.OutHeight;
        int ox = (int)(pixel % wo);
        int oy = (int)(pixel / wo % ho);
        int b = (int)(pixel / ((long)wo * ho));
        int cin = g.InChannels;
        for (int ky = 0; ky < g.KernelHeight; ky++)
        {
            int iy = oy * g.StrideH - g.PadTop + ky;
            for (int kx = 0; kx < g.KernelWidth; kx++)
            {
                int ix = ox * g.StrideW - g.PadLeft + kx;
                float* dst = row + (ky * g.KernelWidth + kx) * cin;
                if ((uint)iy >= (uint)g.InHeight || (uint)ix >= (uint)g.InWidth)
                    new Span<float>(dst, cin).Clear();
                else
                    new ReadOnlySpan<float>(x + (((long)b * g.InHeight + iy) * g.InWidth + ix) * cin, cin).CopyTo(new Span<float>(dst, cin));
            }
        }
    }

    private static float* Scratch(int length)
    {
        if (t_scratchLength < length)
        {
            if (t_scratch != null) NativeMemory.AlignedFree(t_scratch);
            t_scratch = (float*)NativeMemory.AlignedAlloc((nuint)length * sizeof(float), 64);
            t_scratchLength = length;
        }
        return t_scratch;
    }
}
