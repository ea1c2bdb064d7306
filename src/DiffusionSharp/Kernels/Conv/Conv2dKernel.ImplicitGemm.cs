using System.Runtime.CompilerServices;
using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// Convolution as an implicit GEMM over channels-last data: C [pixels, Cout] = patches [pixels, kh*kw*Cin] · Wᵀ,
/// run by the shared blocked GEMM driver with an im2col gather as its A-packing step. Each tile gathers only its own
/// pixels' patch slice for the current K block (at most 512 of kh*kw*Cin) into per-thread scratch, so no full
/// im2col buffer exists; the gather is a few contiguous Cin-long copies per pixel (zeros in the padding), about
/// 1-2 % of the tile's FMA time at SD's channel counts. 1x1 stride-1 unpadded convolutions skip the gather (the
/// input already is A). Stride and asymmetric padding are handled by the same gather. Padding taps are multiplied as
/// zeros, as in a zero-padded PyTorch convolution: a non-finite weight gives NaN at the borders, where the reference
/// (which skips padding taps) stays finite; non-finite activations propagate exactly as in the reference.
/// Measured (Zen 5, .NET 10, machine shared; one core by CPU time): 64x64 320->320 211-213 GFLOP/s (94 % of FMA
/// peak), 32x32 640->640 202-207 (89-92 %), 16x16 1280->1280 196-199 (87-88 %), stride 2 at 64x64x320 201-222
/// (89-98 %); on two cores 370-422 GFLOP/s (83-94 % of 448). conv_in 4->320 (K = 36) 38-62 %.
/// 3x3 stride-1 layers at 64x64 output pixels and more run as Winograd F(4x4, 3x3) instead (Conv2dKernel.Winograd.cs,
/// chosen by <see cref="PrefersWinograd"/>).
/// </summary>
public static unsafe partial class Conv2dKernel
{
    internal static void Forward(float* x, in Conv2dGeometry g, ConvolutionWeights w, float* bias, float* y, float* residual, KernelIsa isa)
    {
        int pixels = checked((int)g.OutputPixels);
        if (g.KernelHeight == 1 && g.KernelWidth == 1 && g.StrideH == 1 && g.StrideW == 1 &&
            g.PadTop == 0 && g.PadLeft == 0 && g.PadBottom == 0 && g.PadRight == 0)
        {
            var linear = new GemmKernel.Problem<GemmKernel.RowMajorRows>(new GemmKernel.RowMajorRows(x, g.InChannels),
                pixels, g.OutChannels, g.InChannels, w.Matrix, 1f, bias, y, g.OutChannels, residual, g.OutChannels);
            GemmKernel.Run(ref linear, isa);
            return;
        }
        var problem = new GemmKernel.Problem<PatchRows>(new PatchRows(x, g), pixels, g.OutChannels, g.PatchSize,
            w.Matrix, 1f, bias, y, g.OutChannels, residual, g.OutChannels);
        GemmKernel.Run(ref problem, isa);
    }

    /// <summary>The implicit im2col matrix: row p is output pixel p's patch in (ky, kx, ci) order, zeros outside the image.</summary>
    internal readonly struct PatchRows(float* x, Conv2dGeometry g) : GemmKernel.IRowSource
    {
        private readonly float* _x = x;
        private readonly Conv2dGeometry _g = g;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Pack(int row0, int rows, int k0, int kc, float* dst)
        {
            int cin = _g.InChannels, kw = _g.KernelWidth, wo = _g.OutWidth, ho = _g.OutHeight;
            int ox = row0 % wo, oy = row0 / wo % ho, b = row0 / (wo * ho);
            for (int r = 0; r < rows; r++)
            {
                float* d = dst + r * MicroKernel.AStride;
                int k = k0, end = k0 + kc;
                while (k < end)
                {
                    int tap = k / cin, ci = k - tap * cin;
                    int len = Math.Min(cin - ci, end - k);
                    int iy = oy * _g.StrideH - _g.PadTop + tap / kw;
                    int ix = ox * _g.StrideW - _g.PadLeft + tap % kw;
                    float* out0 = d + (k - k0);
                    if ((uint)iy < (uint)_g.InHeight && (uint)ix < (uint)_g.InWidth)
                    {
                        float* src = _x + (((long)b * _g.InHeight + iy) * _g.InWidth + ix) * cin + ci;
                        Buffer.MemoryCopy(src, out0, len * sizeof(float), len * sizeof(float));
                    }
                    else
                    {
                        new Span<float>(out0, len).Clear();
                    }
                    k += len;
                }
                if (++ox == wo)
                {
                    ox = 0;
                    if (++oy == ho) { oy = 0; b++; }
                }
            }
        }
    }
}
