using DiffusionSharp.Kernels.Gemm;

namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// Convolution filters packed once for channels-last implicit GEMM: PyTorch's [Cout, Cin, kh, kw] is read as
/// [Cout, kh, kw, Cin] (one im2col row per output pixel in (ky, kx, ci) order) and packed straight into a
/// <see cref="PackedMatrix"/> of shape [Cout, kh*kw*Cin].
/// </summary>
public sealed class ConvolutionWeights : IDisposable
{
    public int OutChannels { get; }
    public int InChannels { get; }
    public int KernelHeight { get; }
    public int KernelWidth { get; }
    public PackedMatrix Matrix { get; }

    /// <summary>Packs filters given in PyTorch layout [outChannels, inChannels, kh, kw], stored in <paramref name="precision"/>.</summary>
    public ConvolutionWeights(ReadOnlySpan<float> weight, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        long expected = (long)outChannels * inChannels * kernelHeight * kernelWidth;
        if (weight.Length != expected)
            throw new ArgumentException($"Convolution weight has {weight.Length} values; [{outChannels}, {inChannels}, {kernelHeight}, {kernelWidth}] needs {expected}.");
        OutChannels = outChannels;
        InChannels = inChannels;
        KernelHeight = kernelHeight;
        KernelWidth = kernelWidth;
        Matrix = PackedMatrix.FromConvolution(weight, outChannels, inChannels, kernelHeight, kernelWidth, precision);
    }

    /// <summary>W[o, ky, kx, ci] (slow; reference kernels and tests).</summary>
    public float this[int o, int ky, int kx, int ci] => Matrix[o, (ky * KernelWidth + kx) * InChannels + ci];

    public void Dispose() => Matrix.Dispose();
}
