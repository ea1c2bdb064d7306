using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>
/// PyTorch <c>nn.Conv2d</c> (groups 1) on channels-last tensors: keys <c>weight</c> [Cout, Cin, k, k] and
/// <c>bias</c> [Cout]. Filters are reordered and packed once at load (<see cref="ConvolutionWeights"/>, stored in the
/// scope's <see cref="WeightScope.Precision"/>), or, when the
/// scope carries quantized layers that include this one, bound in their quantized form (<see cref="QuantizedMatrix"/>
/// of [Cout, k*k*Cin], run over the im2col rows) and no fp32 filter is read. A 3x3 stride-1 layer called at a size
/// where Winograd pays (<see cref="Conv2dKernel.PrefersWinograd"/>) runs Winograd F(4x4, 3x3), transforming its filters
/// at each such call into a scratch buffer shared by all layers (the layer keeps only its 3x3 filters).
/// </summary>
public sealed unsafe class Conv2d : Module, IConvolution
{
    private readonly float[]? _bias;
    /// <summary>What the op profiler calls this layer's calls: its kernel size and stride, and its format when quantized;
    /// Winograd calls add " winograd".</summary>
    private readonly string _profileKind, _winogradKind;

    /// <summary>The layer's key in the checkpoint (its scope, e.g. <c>down_blocks.0.resnets.0.conv1</c>).</summary>
    public string Key { get; }
    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public Padding2d Padding { get; }

    /// <summary>The packed filters (fp32 or 16-bit storage); null when the layer runs quantized.</summary>
    public ConvolutionWeights? Weights { get; }

    /// <summary>The quantized filters; null when the layer runs in fp32.</summary>
    public QuantizedMatrix? Quantized { get; }

    /// <summary>The bias [Cout] (empty without one).</summary>
    public ReadOnlySpan<float> Bias => _bias;

    private Conv2d(WeightScope scope, int inChannels, int outChannels, int kernelSize, int stride, Padding2d padding, bool bias)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Key = scope.LayerKey;
        _bias = bias ? scope.Require("bias", outChannels) : null;
        Quantized = scope.Quantized?.Bind(Key, inChannels, outChannels, kernelSize);
        string name = $"conv{kernelSize}x{kernelSize}" + (stride > 1 ? $"/{stride}" : "");
        (_profileKind, _winogradKind) = (Quantized != null ? name + " " + Quantized.Format : name, name + " winograd");
        if (Quantized == null)
            Weights = scope.WithWeight("weight", [outChannels, inChannels, kernelSize, kernelSize],
                w => new ConvolutionWeights(w.Span, outChannels, inChannels, kernelSize, kernelSize, scope.Precision));
    }

    /// <summary>Binds a square convolution with the same zero padding on every side.</summary>
    public static Conv2d Load(WeightScope scope, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = true)
        => new(scope, inChannels, outChannels, kernelSize, stride, Padding2d.Same(padding), bias);

    /// <summary>Binds a square convolution with per-side zero padding.</summary>
    public static Conv2d Load(WeightScope scope, int inChannels, int outChannels, int kernelSize, int stride, Padding2d padding, bool bias = true)
        => new(scope, inChannels, outChannels, kernelSize, stride, padding, bias);

    public Conv2dGeometry Geometry(int batch, int height, int width)
        => new(batch, height, width, InChannels, OutChannels, KernelSize, KernelSize, Stride, Stride,
            Padding.Top, Padding.Left, Padding.Bottom, Padding.Right);

    public Tensor Forward(Tensor x, Tensor? residual = null) => Allocate(x, residual, null);

    public Tensor ForwardWithImageBias(Tensor x, Tensor imageBias) => Allocate(x, null, imageBias);

    private Tensor Allocate(Tensor x, Tensor? residual, Tensor? imageBias)
    {
        var g = CheckedGeometry(x);
        var y = Tensor.Create(g.Batch, g.OutHeight, g.OutWidth, OutChannels); // [B, Ho, Wo, Cout]
        try
        {
            Forward(x, y, residual, imageBias);
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    /// <summary>output = conv(x) + bias (+ imageBias [B, Cout], a bias per image) (+ residual, which may be
    /// <paramref name="output"/> itself).</summary>
    public void Forward(Tensor x, Tensor output, Tensor? residual = null, Tensor? imageBias = null)
    {
        var g = CheckedGeometry(x);
        if (!output.ShapeEquals(g.Batch, g.OutHeight, g.OutWidth, OutChannels))
            throw new ArgumentException($"Conv2d {InChannels}->{OutChannels}: output {output} does not match input {x}.", nameof(output));
        if (residual != null && !residual.ShapeEquals(output.Shape))
            throw new ArgumentException($"Conv2d {InChannels}->{OutChannels}: residual {residual} does not match output {output}.", nameof(residual));
        if (imageBias != null && !imageBias.ShapeEquals(g.Batch, OutChannels))
            throw new ArgumentException($"Conv2d {InChannels}->{OutChannels}: per-image bias {imageBias} must be [{g.Batch}, {OutChannels}].", nameof(imageBias));
        ActivationObserver.Current?.ObserveConvolution(this, x.Data, g);
        long profile = OpProfiler.Start();
        float* res = residual != null ? residual.Data : null;
        float* image = imageBias != null ? imageBias.Data : null;
        long pixels = g.OutHeight * g.OutWidth;
        fixed (float* bias = _bias)
        {
            if ((bias != null || res != null || image != null) && !Fusions.IsOn(Fusion.Epilogue))
            {
                // The unfused twin: the bare convolution into its own tensor, then one pass per added term.
                using var product = res != null ? Tensor.Create(output.Shape) : null; // [B, Ho, Wo, Cout]
                float* p = product != null ? product.Data : output.Data;
                Product(x.Data, g, null, p, null, null);                                     // [B, Ho, Wo, Cout]
                EpiloguePasses.Apply(p, g.OutputPixels, OutChannels, bias, image, pixels, res, output.Data); // [B, Ho, Wo, Cout]
            }
            else if (image != null && Quantized != null)
            {
                Product(x.Data, g, bias, output.Data, res, null);                            // [B, Ho, Wo, Cout]
                EpiloguePasses.Apply(output.Data, g.OutputPixels, OutChannels, null, image, pixels, null, output.Data); // [B, Ho, Wo, Cout]
            }
            else
            {
                Product(x.Data, g, bias, output.Data, res, image);                           // [B, Ho, Wo, Cout]
            }
        }
        if (profile != 0)
            OpProfiler.Stop(profile, Quantized == null && Conv2dKernel.PrefersWinograd(g) ? _winogradKind : _profileKind,
                g.OutputPixels, OutChannels, g.PatchSize, g.OutputPixels * OutChannels * g.PatchSize);
    }

    /// <summary>y = conv(x) (+ bias) (+ imageBias) (+ residual) through the layer's kernel (the quantized one takes no image bias).</summary>
    private void Product(float* x, in Conv2dGeometry g, float* bias, float* y, float* residual, float* imageBias)
    {
        if (Quantized != null)
            Quantized.Forward(ActivationRows.Patches(x, g), checked((int)g.OutputPixels), bias, y, OutChannels, residual, OutChannels); // [B, Ho, Wo, Cout]
        else if (Conv2dKernel.PrefersWinograd(g))
            Conv2dKernel.ForwardWinograd(x, g, Weights!, bias, y, residual, imageBias); // [B, Ho, Wo, Cout]
        else
            Conv2dKernel.Forward(x, g, Weights!, bias, y, residual, imageBias); // [B, Ho, Wo, Cout]
    }

    public long MultiplyAccumulates(int height, int width)
    {
        var g = Geometry(1, height, width);
        return g.OutputPixels * OutChannels * g.PatchSize;
    }

    protected override long OwnParameterCount => (long)OutChannels * InChannels * KernelSize * KernelSize + (_bias?.Length ?? 0);

    protected override void DisposeOwned()
    {
        Weights?.Dispose();
        Quantized?.Dispose();
    }

    private Conv2dGeometry CheckedGeometry(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[3] != InChannels)
            throw new ArgumentException($"Conv2d {InChannels}->{OutChannels}: input {x} must be [B, H, W, {InChannels}].", nameof(x));
        var g = Geometry(x.Shape[0], x.Shape[1], x.Shape[2]);
        g.Validate();
        return g;
    }
}
