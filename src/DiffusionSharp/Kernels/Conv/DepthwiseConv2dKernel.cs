using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// Depthwise convolution (groups == channels, one kh x kw filter per channel), channels-last:
/// x [B, H, W, C], filters packed as [kh, kw, C] (from PyTorch's [C, 1, kh, kw] by <see cref="PackFilters"/>),
/// y [B, Ho, Wo, C]. Memory-bound (kh*kw MACs per output); vectorized over channels.
/// </summary>
public static unsafe class DepthwiseConv2dKernel
{
    /// <summary>Reorders PyTorch depthwise filters [C, 1, kh, kw] to [kh, kw, C].</summary>
    public static float[] PackFilters(ReadOnlySpan<float> weight, int channels, int kh, int kw)
    {
        if (weight.Length != channels * kh * kw)
            throw new ArgumentException($"Depthwise weight has {weight.Length} values; [{channels}, 1, {kh}, {kw}] needs {channels * kh * kw}.");
        var packed = new float[weight.Length];
        for (int c = 0; c < channels; c++)
        for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++)
            packed[(ky * kw + kx) * channels + c] = weight[(c * kh + ky) * kw + kx];
        return packed;
    }

    /// <summary><paramref name="g"/>.InChannels must equal OutChannels; x and y must not overlap.</summary>
    public static void Forward(float* x, in Conv2dGeometry g, float* filters, float* bias, float* y)
    {
        g.Validate();
        if (g.InChannels != g.OutChannels) throw new ArgumentException($"Depthwise convolution needs equal in/out channels, got {g}.");
        if (KernelSettings.UseReference) { ForwardReference(x, g, filters, bias, y); return; }
        var args = new Args { X = x, G = g, F = filters, Bias = bias, Y = y };
        ThreadScheduler.Current.For(g.Batch * g.OutHeight, &Row, &args);
    }

    public static void ForwardReference(float* x, in Conv2dGeometry g, float* filters, float* bias, float* y)
    {
        int c = g.InChannels;
        for (int b = 0; b < g.Batch; b++)
        for (int oy = 0; oy < g.OutHeight; oy++)
        for (int ox = 0; ox < g.OutWidth; ox++)
        for (int ch = 0; ch < c; ch++)
        {
            double sum = bias != null ? bias[ch] : 0.0;
            for (int ky = 0; ky < g.KernelHeight; ky++)
            {
                int iy = oy * g.StrideH - g.PadTop + ky;
                if ((uint)iy >= (uint)g.InHeight) continue;
                for (int kx = 0; kx < g.KernelWidth; kx++)
                {
                    int ix = ox * g.StrideW - g.PadLeft + kx;
                    if ((uint)ix >= (uint)g.InWidth) continue;
                    sum += (double)x[(((long)b * g.InHeight + iy) * g.InWidth + ix) * c + ch] * filters[(ky * g.KernelWidth + kx) * c + ch];
                }
            }
            y[(((long)b * g.OutHeight + oy) * g.OutWidth + ox) * c + ch] = (float)sum;
        }
    }

    private struct Args { public float* X; public Conv2dGeometry G; public float* F; public float* Bias; public float* Y; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(void* context, int index)
    {
        ref Args a = ref Unsafe.AsRef<Args>(context);
        ref readonly Conv2dGeometry g = ref a.G;
        int c = g.InChannels;
        int b = index / g.OutHeight, oy = index % g.OutHeight;
        for (int ox = 0; ox < g.OutWidth; ox++)
        {
            float* dst = a.Y + (((long)b * g.OutHeight + oy) * g.OutWidth + ox) * c;
            int ch = 0;
            for (; ch <= c - 16; ch += 16)
            {
                var acc = a.Bias != null ? Vector512.Load(a.Bias + ch) : Vector512<float>.Zero;
                for (int ky = 0; ky < g.KernelHeight; ky++)
                {
                    int iy = oy * g.StrideH - g.PadTop + ky;
                    if ((uint)iy >= (uint)g.InHeight) continue;
                    for (int kx = 0; kx < g.KernelWidth; kx++)
                    {
                        int ix = ox * g.StrideW - g.PadLeft + kx;
                        if ((uint)ix >= (uint)g.InWidth) continue;
                        var xv = Vector512.Load(a.X + (((long)b * g.InHeight + iy) * g.InWidth + ix) * c + ch);
                        acc = Vector512.FusedMultiplyAdd(xv, Vector512.Load(a.F + (ky * g.KernelWidth + kx) * c + ch), acc);
                    }
                }
                acc.Store(dst + ch);
            }
            for (; ch < c; ch++)
            {
                float sum = a.Bias != null ? a.Bias[ch] : 0f;
                for (int ky = 0; ky < g.KernelHeight; ky++)
                {
                    int iy = oy * g.StrideH - g.PadTop + ky;
                    if ((uint)iy >= (uint)g.InHeight) continue;
                    for (int kx = 0; kx < g.KernelWidth; kx++)
                    {
                        int ix = ox * g.StrideW - g.PadLeft + kx;
                        if ((uint)ix >= (uint)g.InWidth) continue;
                        sum = MathF.FusedMultiplyAdd(a.X[(((long)b * g.InHeight + iy) * g.InWidth + ix) * c + ch], a.F[(ky * g.KernelWidth + kx) * c + ch], sum);
                    }
                }
                dst[ch] = sum;
            }
        }
    }
}
