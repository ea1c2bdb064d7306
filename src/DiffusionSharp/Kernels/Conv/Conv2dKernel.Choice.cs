namespace DiffusionSharp.Kernels.Conv;

public static unsafe partial class Conv2dKernel
{
    /// <summary>Output pixels per image from which a layer runs as Winograd: 64x64 (SD's latent at 512x512).</summary>
    public const int WinogradMinOutputPixels = 64 * 64;

    /// <summary>Fewest input and output channels for Winograd: below this the transforms cost more than the multiplies save.</summary>
    public const int WinogradMinChannels = 8;

    /// <summary>
    /// Whether a layer of geometry <paramref name="g"/> should run as Winograd F(4x4, 3x3) rather than implicit GEMM: a
    /// rule derived from a measured table (docs/KERNELS.md, `bench/DiffusionSharp.Benchmarks -- conv-choice`), not a
    /// timing at run time, so the same inputs give the same numbers on every run and machine.
    /// <para>
    /// Measured (one core, CPU time): Winograd is 1.35-3.5x faster than the implicit GEMM at every 3x3 stride-1 shape
    /// from 8x8 to 128x128 and 32 to 1280 channels except 8x8x640 and 8x8x1280 (0.94-1.1); it loses only at the
    /// few-channel ends (conv_in 4 -> 320: 0.53x, the VAE's 128 -> 3: 0.93x), hence the channel floor. What
    /// decides is its filter memory, 4x the 3x3 weights, which buys time in proportion to the pixels each filter
    /// is applied to: at 64x64 and above (the VAE, the UNet's first level at 512x512) a megabyte of transformed filters
    /// saves the most. The UNet's 32x32 level would save ~65 % of its conv time (~0.35 s per CFG step) for 956 MiB
    /// more, its 16x16 and 8x8 levels less for 6.6 GiB (fp32 filter sizes in docs/KERNELS.md).
    /// </para>
    /// False under the reference kernels (which run the direct convolution) and when <see cref="KernelSettings.AllowWinograd"/> is off.
    /// </summary>
    public static bool PrefersWinograd(in Conv2dGeometry g)
        => KernelSettings.AllowWinograd && !KernelSettings.UseReference && SupportsWinograd(g)
           && (long)g.OutHeight * g.OutWidth >= WinogradMinOutputPixels
           && Math.Min(g.InChannels, g.OutChannels) >= WinogradMinChannels;
}
