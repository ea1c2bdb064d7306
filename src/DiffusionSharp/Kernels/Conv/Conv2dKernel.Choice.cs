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
    /// few-channel ends (conv_in 4 -> 320: 0.53x, the VAE's 128 -> 3: 0.93x), hence the channel floor. The 64x64 floor
    /// dates from layers keeping their transformed filters (4x the 3x3 weights); they are now transformed per call into
    /// one shared scratch, and that transform, which writes 4x the filters each call, costs 3-13 % of the Winograd
    /// convolution at 64x64 and 21 % at 32x32, 81 % at 16x16 (docs/KERNELS.md). Winograd with it is still 2.1x
    /// faster at the UNet's 32x32 level, for a scratch of its largest layer (225 MiB); that step is left to the
    /// memory budget.
    /// </para>
    /// False under the reference kernels (which run the direct convolution) and when <see cref="KernelSettings.AllowWinograd"/> is off.
    /// </summary>
    public static bool PrefersWinograd(in Conv2dGeometry g)
        => KernelSettings.AllowWinograd && !KernelSettings.UseReference && SupportsWinograd(g)
           && (long)g.OutHeight * g.OutWidth >= WinogradMinOutputPixels
           && Math.Min(g.InChannels, g.OutChannels) >= WinogradMinChannels;
}
