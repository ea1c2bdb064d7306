using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>
/// MobileDiffusion's factored 3x3 convolution: depthwise 3x3 (stride 1, padding 1, no bias) then pointwise 1x1.
/// Keys <c>depthwise.weight</c> [Cin, 1, 3, 3], <c>pointwise.weight</c> [Cout, Cin, 1, 1], <c>pointwise.bias</c> [Cout].
/// </summary>
public sealed unsafe class DepthwiseSeparableConv2d : Module, IConvolution
{
    private const int Kernel = 3;

    /// <summary>Depthwise filters reordered to [3, 3, Cin] (<see cref="DepthwiseConv2dKernel.PackFilters"/>).</summary>
    private readonly float[] _depthwise;
    private readonly Linear _pointwise;

    public int InChannels { get; }
    public int OutChannels { get; }

    private DepthwiseSeparableConv2d(WeightScope scope, int inChannels, int outChannels)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        float[] depthwise = scope.Push("depthwise").Require("weight", inChannels, 1, Kernel, Kernel);
        _depthwise = DepthwiseConv2dKernel.PackFilters(depthwise, inChannels, Kernel, Kernel);
        _pointwise = Add(Linear.LoadPointwiseConv(scope.Push("pointwise"), inChannels, outChannels));
    }

    public static DepthwiseSeparableConv2d Load(WeightScope scope, int inChannels, int outChannels) => new(scope, inChannels, outChannels);

    public Tensor Forward(Tensor x, Tensor? residual = null) => Forward(x, residual, null);

    public Tensor ForwardWithImageBias(Tensor x, Tensor imageBias) => Forward(x, null, imageBias);

    private Tensor Forward(Tensor x, Tensor? residual, Tensor? imageBias)
    {
        if (x.Rank != 4 || x.Shape[3] != InChannels)
            throw new ArgumentException($"Separable conv {InChannels}->{OutChannels}: input {x} must be [B, H, W, {InChannels}].", nameof(x));
        int b = x.Shape[0], h = x.Shape[1], w = x.Shape[2];
        var g = Conv2dGeometry.Same(b, h, w, InChannels, InChannels, Kernel);
        using var depthwise = Tensor.Create(b, h, w, InChannels); // [B, H, W, Cin]
        fixed (float* filters = _depthwise)
            DepthwiseConv2dKernel.Forward(x.Data, g, filters, null, depthwise.Data); // [B, H, W, Cin]
        var y = Tensor.Create(b, h, w, OutChannels); // [B, H, W, Cout]
        try
        {
            _pointwise.Forward(depthwise, y, residual, imageBias); // [B, H, W, Cout]
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    public long MultiplyAccumulates(int height, int width)
        => (long)height * width * InChannels * Kernel * Kernel + _pointwise.MultiplyAccumulates((long)height * width);

    protected override long OwnParameterCount => _depthwise.Length;
}
