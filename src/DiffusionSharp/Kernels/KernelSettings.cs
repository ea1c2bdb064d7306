namespace DiffusionSharp.Kernels;

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
}
