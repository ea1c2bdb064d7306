using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>
/// y = x · Wᵀ + b over the last dimension (PyTorch <c>nn.Linear</c>; keys <c>weight</c> [out, in], <c>bias</c> [out]).
/// Also serves 1x1 convolutions, which on channels-last tensors are the same GEMM over pixels.
/// The weight is packed once at load (<see cref="PackedMatrix"/>, stored in the scope's <see cref="WeightScope.Precision"/>), or, when the scope carries quantized layers that
/// include this one, bound in its quantized form (<see cref="QuantizedMatrix"/>) and no fp32 weight is read.
/// </summary>
public sealed unsafe class Linear : Module
{
    private readonly float[]? _bias;

    /// <summary>The layer's key in the checkpoint (its scope, e.g. <c>mid_block.attentions.0.proj_in</c>).</summary>
    public string Key { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }

    /// <summary>The packed weight (fp32 or 16-bit storage); null when the layer runs quantized.</summary>
    public PackedMatrix? Weight { get; }

    /// <summary>The quantized weight; null when the layer runs in fp32.</summary>
    public QuantizedMatrix? Quantized { get; }

    public bool HasBias => _bias != null;

    /// <summary>The bias [out] (empty without one).</summary>
    public ReadOnlySpan<float> Bias => _bias;

    private Linear(string key, PackedMatrix? weight, QuantizedMatrix? quantized, float[]? bias, int inFeatures, int outFeatures)
    {
        Key = key;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = weight;
        Quantized = quantized;
        _bias = bias;
    }

    /// <summary>Binds <c>weight</c> [out, in] and, when <paramref name="bias"/>, <c>bias</c> [out].</summary>
    public static Linear Load(WeightScope scope, int inFeatures, int outFeatures, bool bias = true)
        => Bind(scope, [outFeatures, inFeatures], inFeatures, outFeatures, bias);

    /// <summary>Binds a 1x1 convolution: <c>weight</c> [out, in, 1, 1] and <c>bias</c> [out].</summary>
    public static Linear LoadPointwiseConv(WeightScope scope, int inChannels, int outChannels, bool bias = true)
        => Bind(scope, [outChannels, inChannels, 1, 1], inChannels, outChannels, bias);

    private static Linear Bind(WeightScope scope, int[] weightShape, int inFeatures, int outFeatures, bool bias)
    {
        var quantized = scope.Quantized?.Bind(scope.LayerKey, inFeatures, outFeatures, kernelSize: 1);
        var packed = quantized == null ? scope.WithWeight("weight", weightShape, w => new PackedMatrix(w.Span, outFeatures, inFeatures, scope.Precision)) : null;
        try
        {
            return new Linear(scope.LayerKey, packed, quantized, bias ? scope.Require("bias", outFeatures) : null, inFeatures, outFeatures);
        }
        catch
        {
            packed?.Dispose();
            quantized?.Dispose();
            throw;
        }
    }

    /// <summary>x [..., in] -> [..., out] (a new tensor; the caller disposes it).</summary>
    public Tensor Forward(Tensor x)
    {
        var shape = (int[])x.Shape.Clone();
        shape[^1] = OutFeatures;
        var y = new Tensor(shape); // [..., out]
        try
        {
            Forward(x, y);
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    /// <summary>output = x · Wᵀ + b (+ residual). <paramref name="residual"/> may be <paramref name="output"/> itself
    /// (accumulate in place); <paramref name="output"/> must not overlap <paramref name="x"/>.</summary>
    public void Forward(Tensor x, Tensor output, Tensor? residual = null)
    {
        int rows = Rows(x, InFeatures, "input");
        if (Rows(output, OutFeatures, "output") != rows)
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures}: output {output} does not match input {x}.", nameof(output));
        if (residual != null && (residual.Length != output.Length || residual.Shape[^1] != OutFeatures))
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures}: residual {residual} does not match output {output}.", nameof(residual));
        ActivationObserver.Current?.ObserveLinear(this, x.Data, rows);
        float* res = residual != null ? residual.Data : null;
        fixed (float* bias = _bias)
        {
            if (Quantized != null)
                Quantized.Forward(ActivationRows.Matrix(x.Data, InFeatures, InFeatures), rows, bias, output.Data, OutFeatures, res, OutFeatures); // [..., out]
            else
                GemmKernel.Linear(x.Data, InFeatures, rows, Weight!, bias, output.Data, OutFeatures, res, OutFeatures); // [..., out]
        }
    }

    /// <summary>Multiply-accumulates of one forward over <paramref name="rows"/> rows.</summary>
    public long MultiplyAccumulates(long rows) => rows * InFeatures * OutFeatures;

    protected override long OwnParameterCount => (long)InFeatures * OutFeatures + (_bias?.Length ?? 0);

    protected override void DisposeOwned()
    {
        Weight?.Dispose();
        Quantized?.Dispose();
    }

    private int Rows(Tensor t, int features, string what)
    {
        if (t.Rank == 0 || t.Shape[^1] != features)
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures}: {what} {t} must end in {features} features.");
        return checked((int)(t.Length / features));
    }
}
