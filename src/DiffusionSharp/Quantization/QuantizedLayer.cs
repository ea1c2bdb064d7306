using DiffusionSharp.Kernels.Quant;

namespace DiffusionSharp.Quantization;

/// <summary>How a layer's weights are stored.</summary>
public enum QuantizedLayerFormat
{
    /// <summary>int4 weights per group (fp16 scales), int4 activations per row and group at run time; optional smoothing and low-rank branch.</summary>
    W4A4,
    /// <summary>int8 weights per output channel, int8 activations per row at run time.</summary>
    W8A8,
    /// <summary>NF4 weights per group (fp16 absmax), fp32 activations.</summary>
    Nf4,
}

/// <summary>
/// One quantized layer in logical form, as <see cref="QuantizedUnetFile"/> stores it (docs/QUANTIZATION.md, file
/// layout): a linear layer [out, in] or a convolution [out, in, k, k] viewed as [out, k*k*in] with inputs in (ky, kx, ci)
/// order. Codes are row-major [out, K] (int4 in [-8, 7], int8 in [-127, 127], NF4 level indices 0..15); scales are
/// [out, ceil(K / group)] (W8A8: [out]); smoothing λ is per input channel (a convolution applies it to every tap); the
/// low-rank factors act on the smoothed input x̂: y += (x̂ · down) · upᵀ with down [K, rank] and up [out, rank].
/// </summary>
public sealed record QuantizedLayer
{
    public required string Key { get; init; }
    public required bool IsConvolution { get; init; }
    public required int InChannels { get; init; }
    public required int OutChannels { get; init; }
    public required int KernelSize { get; init; }
    public required QuantizedLayerFormat Format { get; init; }
    /// <summary>Inputs per scale group (W4A4, NF4); 0 for W8A8.</summary>
    public int GroupSize { get; init; }
    public required byte[] Codes { get; init; }
    public required float[] Scales { get; init; }
    public float[]? Smooth { get; init; }
    public int Rank { get; init; }
    public float[]? Down { get; init; }
    public float[]? Up { get; init; }

    /// <summary>W4A4: activations coded per group over [min, max] with a zero point (<see cref="IntegerMatrix.AsymmetricActivations"/>).</summary>
    public bool AsymmetricActivations { get; init; }

    /// <summary>The smoothing strengths chosen (λ = max|X|^α / max|W|^β), for the record; null without smoothing.</summary>
    public double? Alpha { get; init; }
    public double? Beta { get; init; }

    /// <summary>‖Y − Ŷ‖² / ‖Y‖² of the quantized layer on the calibration inputs, for the record.</summary>
    public double? RelativeError { get; init; }

    /// <summary>Inputs per output: k*k*in.</summary>
    public int K => KernelSize * KernelSize * InChannels;

    public int Groups => Format == QuantizedLayerFormat.W8A8 ? 1 : (K + GroupSize - 1) / GroupSize;

    /// <summary>Packs this layer for the kernels.</summary>
    public QuantizedMatrix CreateMatrix()
    {
        switch (Format)
        {
            case QuantizedLayerFormat.Nf4:
                return new Nf4Matrix(OutChannels, K, GroupSize, Codes, Scales);
            case QuantizedLayerFormat.W8A8:
                return IntegerMatrix.W8A8(OutChannels, K, AsSigned(Codes), Scales, ExpandedSmooth(), Rank, Down, Up);
            default:
                return IntegerMatrix.W4A4(OutChannels, K, GroupSize, AsSigned(Codes), Scales, ExpandedSmooth(), Rank, Down, Up, AsymmetricActivations);
        }
    }

    /// <summary>λ per column of the [out, K] matrix: a convolution repeats its per-channel λ for every tap.</summary>
    public float[] ExpandedSmooth()
    {
        if (Smooth == null) return [];
        var expanded = new float[K];
        for (int i = 0; i < K; i++) expanded[i] = Smooth[i % InChannels];
        return expanded;
    }

    private static ReadOnlySpan<sbyte> AsSigned(byte[] codes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(codes);
}
