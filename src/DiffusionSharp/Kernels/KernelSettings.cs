using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DiffusionSharp.Kernels;

/// <summary>Instruction-set paths of the optimized kernels, best last.</summary>
public enum KernelIsa
{
    /// <summary><c>Vector128</c> code: NEON on Arm64, SSE elsewhere.</summary>
    Portable,
    /// <summary>256-bit AVX2 with FMA3.</summary>
    Avx2,
    /// <summary>512-bit AVX-512F.</summary>
    Avx512,
}

/// <summary>
/// Global kernel switches. <c>DIFFUSIONSHARP_REFERENCE_KERNELS=1</c> forces every kernel onto its scalar
/// reference twin (slow, double-accumulating): the bisection switch for a wrong image.
/// </summary>
public static class KernelSettings
{
    public const string ReferenceEnvironmentVariable = "DIFFUSIONSHARP_REFERENCE_KERNELS";

    /// <summary>When true, every kernel dispatches to its <c>Reference</c> implementation.</summary>
    public static bool UseReference { get; set; } =
        Environment.GetEnvironmentVariable(ReferenceEnvironmentVariable) is "1" or "true" or "TRUE" or "yes";

    public const string WinogradEnvironmentVariable = "DIFFUSIONSHARP_WINOGRAD";

    /// <summary>
    /// When false, every 3x3 convolution runs as implicit GEMM (<c>DIFFUSIONSHARP_WINOGRAD=0</c>): the Winograd ablation
    /// and a bisection switch. When true, <c>Conv2dKernel.PrefersWinograd</c> picks Winograd F(4x4, 3x3) where it pays.
    /// </summary>
    public static bool AllowWinograd { get; set; } =
        Environment.GetEnvironmentVariable(WinogradEnvironmentVariable) is not ("0" or "false" or "FALSE" or "no");

    /// <summary>The best instruction-set path this process can run (AVX-512 only where the JIT accelerates 512-bit vectors).</summary>
    public static KernelIsa BestIsa { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? KernelIsa.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? KernelIsa.Avx2
        : KernelIsa.Portable;

    /// <summary>Whether this process can run the kernels' <paramref name="isa"/> path (tests sweep every supported one).</summary>
    public static bool IsSupported(KernelIsa isa) => isa <= BestIsa;
}
