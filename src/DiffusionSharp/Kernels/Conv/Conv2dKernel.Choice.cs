namespace DiffusionSharp.Kernels.Conv;

public static unsafe partial class Conv2dKernel
{
    /// <summary>Output pixels per image from which a layer runs as Winograd: 32x32 (SD's 32x32 latent level at 512x512).</summary>
    public const int WinogradMinOutputPixels = 32 * 32;

    /// <summary>
    /// Fewest input and output channels for Winograd: SD's layers have 128-1280. Narrower layers run implicit GEMM: the
    /// shipped model's VAE decoder (48 channels at 64x64, 96 at 32x32) decoded in 71-72 ms with them as Winograd and
    /// 45-46 ms without (`diffusion bench -t 2 -r 20`, in the model, 2 threads; 77-87 ms with only its 32x32 layers as
    /// Winograd): with few panels the tasks are few and unbalanced, and the transforms weigh more.
    /// </summary>
    public const int WinogradMinChannels = 128;

    /// <summary>
    /// Whether a layer of geometry <paramref name="g"/> should run as Winograd F(4x4, 3x3) rather than implicit GEMM: a
    /// rule derived from a measured table (docs/KERNELS.md, `bench/DiffusionSharp.Benchmarks -- conv-choice`), not a
    /// timing at run time, so the same inputs give the same numbers on every run and machine.
    /// <para>
    /// Measured (one core, CPU time): Winograd is 1.35-3.5x faster than the implicit GEMM at every 3x3 stride-1 shape
    /// from 8x8 to 128x128 and 32 to 1280 channels except 8x8x640 and 8x8x1280 (0.94-1.1); it loses only at the
    /// few-channel ends (conv_in 4 -> 320: 0.53x, the VAE's 128 -> 3: 0.93x), hence a channel floor, which the model
    /// measurement of <see cref="WinogradMinChannels"/> raised to 128. Per call the
    /// filters are transformed again, which writes 4x the 3x3 weights: 3-13 % of the Winograd convolution at 64x64, 21 %
    /// at 32x32, 81 % at 16x16 (docs/KERNELS.md), so 16x16 stays implicit GEMM. The 32x32 level (SD 1.5 at 512x512)
    /// joined when its layers began transforming inside their tasks (<see cref="TransformsInTasks"/>), which needs a few
    /// MB of scratch instead of the whole layer's 225 MiB: the fp32 UNet step went from 4.47 to 4.10 s (profiled, 2
    /// threads), peak RSS with fp16 weights from 3.46 to 3.55 GB (docs/BENCHMARKS.md).
    /// </para>
    /// False under the reference kernels (which run the direct convolution) and when <see cref="KernelSettings.AllowWinograd"/> is off.
    /// </summary>
    public static bool PrefersWinograd(in Conv2dGeometry g)
        => KernelSettings.AllowWinograd && !KernelSettings.UseReference && SupportsWinograd(g)
           && (long)g.OutHeight * g.OutWidth >= WinogradMinOutputPixels
           && Math.Min(g.InChannels, g.OutChannels) >= WinogradMinChannels;
}
