using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Elementwise;
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

    private readonly string _profileKind;

    public bool HasBias => _bias != null;

    /// <summary>The bias [out] (empty without one).</summary>
    public ReadOnlySpan<float> Bias => _bias;

    /// <summary>
    /// For a gated projection (<see cref="LoadGated"/>): the width of the alternating value and gate column blocks of
    /// the output — <see cref="GemmKernel.GateBlock"/> when the rows were interleaved for the gated epilogue, else the inner
    /// width (value half, then gate half, as in the checkpoint). 0 for other layers.
    /// </summary>
    public int GateBlockWidth { get; }

    /// <summary>Whether <see cref="ForwardGated"/> can fold the gate into the GEMM epilogue (fp32, interleaved rows).</summary>
    public bool CanGateInEpilogue => Weight != null && GateBlockWidth == GemmKernel.GateBlock;

    private Linear(string key, PackedMatrix? weight, QuantizedMatrix? quantized, float[]? bias, int inFeatures, int outFeatures, int gateBlockWidth)
    {
        Key = key;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = weight;
        Quantized = quantized;
        _profileKind = quantized != null ? "linear " + quantized.Format : "linear";
        _bias = bias;
        GateBlockWidth = gateBlockWidth;
    }

    /// <summary>Binds <c>weight</c> [out, in] and, when <paramref name="bias"/>, <c>bias</c> [out].</summary>
    public static Linear Load(WeightScope scope, int inFeatures, int outFeatures, bool bias = true)
        => Bind(scope, [outFeatures, inFeatures], inFeatures, outFeatures, bias, 0);

    /// <summary>Binds a 1x1 convolution: <c>weight</c> [out, in, 1, 1] and <c>bias</c> [out].</summary>
    public static Linear LoadPointwiseConv(WeightScope scope, int inChannels, int outChannels, bool bias = true)
        => Bind(scope, [outChannels, inChannels, 1, 1], inChannels, outChannels, bias, 0);

    /// <summary>
    /// Binds a gated feed-forward projection, <c>weight</c> [2·inner, in] (value rows, then gate rows) and <c>bias</c>
    /// [2·inner]. In fp32, with inner a multiple of 16, rows and bias are stored interleaved
    /// (<see cref="GemmKernel.InterleaveGate"/>) so the gate can run in the GEMM epilogue (<see cref="ForwardGated"/>);
    /// <see cref="Forward(Tensor)"/> then yields the columns in that order (<see cref="GateBlockWidth"/>).
    /// </summary>
    public static Linear LoadGated(WeightScope scope, int inFeatures, int innerDim)
        => Bind(scope, [2 * innerDim, inFeatures], inFeatures, 2 * innerDim, bias: true, innerDim);

    private static Linear Bind(WeightScope scope, int[] weightShape, int inFeatures, int outFeatures, bool bias, int gateInner)
    {
        var quantized = scope.Quantized?.Bind(scope.LayerKey, inFeatures, outFeatures, kernelSize: 1);
        bool interleave = gateInner > 0 && quantized == null && gateInner % GemmKernel.GateBlock == 0;
        var packed = quantized == null
            ? scope.WithWeight("weight", weightShape, w => interleave
                ? new PackedMatrix(GemmKernel.InterleaveGate(w.Span, gateInner, inFeatures), outFeatures, inFeatures, scope.Precision)
                : new PackedMatrix(w.Span, outFeatures, inFeatures, scope.Precision))
            : null;
        try
        {
            float[]? b = bias ? scope.Require("bias", outFeatures) : null;
            if (interleave && b != null) b = GemmKernel.InterleaveGate(b, gateInner, 1);
            return new Linear(scope.LayerKey, packed, quantized, b, inFeatures, outFeatures, interleave ? GemmKernel.GateBlock : gateInner);
        }
        catch
        {
            packed?.Dispose();
            quantized?.Dispose();
            throw;
        }
    }

    /// <summary>The row of <see cref="Weight"/> that holds output <paramref name="output"/> of the checkpoint's layout
    /// (the two differ only in an interleaved gated projection).</summary>
    public int WeightRow(int output)
    {
        if (GateBlockWidth != GemmKernel.GateBlock || Quantized != null) return output;
        int inner = OutFeatures / 2, half = output / inner, j = output % inner;
        return (j / GemmKernel.GateBlock * 2 + half) * GemmKernel.GateBlock + j % GemmKernel.GateBlock;
    }

    /// <summary>
    /// output [..., inner] = value ⊙ act(gate) of this gated projection (<see cref="LoadGated"/>), the gate applied in the
    /// GEMM epilogue: the [..., 2·inner] projection is never written. Needs <see cref="CanGateInEpilogue"/>.
    /// </summary>
    public void ForwardGated(Tensor x, Tensor output, GateKind gate)
    {
        if (!CanGateInEpilogue)
            throw new InvalidOperationException($"Linear '{Key}' cannot gate in its epilogue: it is not an interleaved fp32 gated projection.");
        int rows = Rows(x, InFeatures, "input");
        if (Rows(output, OutFeatures / 2, "output") != rows)
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures} gated: output {output} does not match input {x}.", nameof(output));
        ActivationObserver.Current?.ObserveLinear(this, x.Data, rows);
        long profile = OpProfiler.Start();
        fixed (float* bias = _bias)
            GemmKernel.LinearGated(x.Data, InFeatures, rows, Weight!, bias, gate, output.Data, OutFeatures / 2); // [..., inner]
        OpProfiler.Stop(profile, "linear gated", rows, OutFeatures, InFeatures, (long)rows * OutFeatures * InFeatures);
    }

    /// <summary>x [..., in] -> [..., out] (a new tensor; the caller disposes it).</summary>
    public Tensor Forward(Tensor x)
    {
        Span<int> shape = stackalloc int[x.Rank];
        x.Shape.CopyTo(shape);
        shape[^1] = OutFeatures;
        var y = Tensor.Create(shape); // [..., out]
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

    /// <summary>output = x · Wᵀ + b (+ imageBias) (+ residual). <paramref name="residual"/> may be <paramref name="output"/>
    /// itself (accumulate in place); <paramref name="output"/> must not overlap <paramref name="x"/>. <paramref name="imageBias"/>
    /// [images, out] adds a bias per image, the rows split evenly between the images (a time embedding over pixels).</summary>
    public void Forward(Tensor x, Tensor output, Tensor? residual = null, Tensor? imageBias = null)
    {
        int rows = Rows(x, InFeatures, "input");
        if (Rows(output, OutFeatures, "output") != rows)
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures}: output {output} does not match input {x}.", nameof(output));
        if (residual != null && (residual.Length != output.Length || residual.Shape[^1] != OutFeatures))
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures}: residual {residual} does not match output {output}.", nameof(residual));
        if (imageBias != null && (imageBias.Rank != 2 || imageBias.Shape[1] != OutFeatures || imageBias.Shape[0] <= 0 || rows % imageBias.Shape[0] != 0))
            throw new ArgumentException($"Linear {InFeatures}->{OutFeatures}: per-image bias {imageBias} must be [images, {OutFeatures}] with the {rows} rows split evenly.", nameof(imageBias));
        ActivationObserver.Current?.ObserveLinear(this, x.Data, rows);
        long profile = OpProfiler.Start();
        float* res = residual != null ? residual.Data : null;
        float* image = imageBias != null ? imageBias.Data : null;
        int imageRows = imageBias != null ? rows / imageBias.Shape[0] : 0;
        fixed (float* bias = _bias)
        {
            if ((bias != null || res != null || image != null) && !Fusions.IsOn(Fusion.Epilogue))
            {
                // The unfused twin: the bare product into its own tensor, then one pass per added term.
                using var product = res != null ? Tensor.Create(output.Shape) : null; // [..., out]
                float* p = product != null ? product.Data : output.Data;
                Product(x, rows, null, p, null, null, 0);                                    // [..., out]
                EpiloguePasses.Apply(p, rows, OutFeatures, bias, image, imageRows, res, output.Data); // [..., out]
            }
            else if (image != null && Quantized != null)
            {
                Product(x, rows, bias, output.Data, res, null, 0);                           // [..., out]
                EpiloguePasses.Apply(output.Data, rows, OutFeatures, null, image, imageRows, null, output.Data); // [..., out]
            }
            else
            {
                Product(x, rows, bias, output.Data, res, image, imageRows);                  // [..., out]
            }
        }
        OpProfiler.Stop(profile, _profileKind, rows, OutFeatures, InFeatures, (long)rows * OutFeatures * InFeatures);
    }

    /// <summary>y = x · Wᵀ (+ bias) (+ imageBias) (+ residual) through the layer's kernel (the quantized one takes no image bias).</summary>
    private void Product(Tensor x, int rows, float* bias, float* y, float* residual, float* imageBias, int imageRows)
    {
        if (Quantized != null)
            Quantized.Forward(ActivationRows.Matrix(x.Data, InFeatures, InFeatures), rows, bias, y, OutFeatures, residual, OutFeatures); // [..., out]
        else
            GemmKernel.Linear(x.Data, InFeatures, rows, Weight!, bias, y, OutFeatures, residual, OutFeatures, imageBias, imageRows); // [..., out]
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
