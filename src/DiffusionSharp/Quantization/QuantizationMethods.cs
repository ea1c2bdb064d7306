namespace DiffusionSharp.Quantization;

/// <summary>
/// The quantization algorithms of <c>diffusion quantize</c>: SVDQuant and the baselines it is measured against.
/// </summary>
public static class QuantizationMethods
{
    /// <summary>W4A4: per-layer smoothing searched by output error, rank-r SVD branch (16-bit), int4 residual.</summary>
    public const string SvdQuant = "svdquant";

    /// <summary>W4A4 with the smoothing search only (no low-rank branch): SmoothQuant at 4 bits.</summary>
    public const string W4A4Smooth = "w4a4-smooth";

    /// <summary>W4A4 round-to-nearest: no smoothing, no branch.</summary>
    public const string W4A4Naive = "w4a4-naive";

    /// <summary>int8 weights per output channel, int8 activations per token.</summary>
    public const string W8A8 = "w8a8";

    /// <summary>Weight-only 4-bit NormalFloat per group, fp32 activations.</summary>
    public const string Nf4 = "nf4";

    public static IReadOnlyList<string> All { get; } = [SvdQuant, W4A4Smooth, W4A4Naive, W8A8, Nf4];
}
