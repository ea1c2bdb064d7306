using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Nn;

/// <summary>
/// Conv2d's choice between implicit GEMM and Winograd: the rule, the lazily transformed filters, and the switches
/// (<see cref="KernelSettings.AllowWinograd"/>, the reference kernels). The switches are process-wide, so these run in
/// the collection that runs alone.
/// </summary>
[Collection(ReferenceKernelsCollection.Name)]
public unsafe class Conv2dWinogradSelectionTests
{
    [Fact]
    public void Rule_picks_winograd_for_3x3_stride_1_from_64x64_output_pixels_and_8_channels()
    {
        Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 64, 64, 320, 320, 3)));
        Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 512, 512, 128, 128, 3)));
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 512, 512, 128, 3, 3)));   // VAE conv_out
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(2, 64, 64, 4, 320, 3)));     // UNet conv_in
        Assert.True(Conv2dKernel.PrefersWinograd(new Conv2dGeometry(1, 66, 66, 8, 8, 3, 3)));  // unpadded, 64x64 out
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(2, 32, 32, 640, 640, 3)));
        Assert.False(Conv2dKernel.PrefersWinograd(new Conv2dGeometry(1, 128, 128, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1)));
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 64, 64, 320, 320, 1)));
    }

    private static Conv2d Layer(int cin, int cout)
    {
        var weights = new InMemoryWeightSource();
        weights.Add("weight", Uniform(cout * cin * 9, 51), cout, cin, 3, 3);
        weights.Add("bias", Uniform(cout, 52), cout);
        return Conv2d.Load(new WeightScope(weights), cin, cout, kernelSize: 3, padding: 1);
    }

    private static float[] Direct(Conv2d conv, Tensor x, Tensor residual)
    {
        var g = conv.Geometry(x.Shape[0], x.Shape[1], x.Shape[2]);
        var expected = new float[residual.ToArray().Length];
        fixed (float* pe = expected, pb = conv.Bias) Conv2dKernel.ForwardReference(x.Data, g, conv.Weights!, pb, pe, residual.Data);
        return expected;
    }

    [Fact]
    public void Conv2d_transforms_its_filters_at_the_first_winograd_sized_call_and_matches_the_direct_convolution()
    {
        using var conv = Layer(12, 10);
        using var small = Tensor.FromArray(Uniform(32 * 32 * 12, 53), 1, 32, 32, 12);
        using var smallOut = conv.Forward(small);
        Assert.Null(conv.Winograd);

        using var x = Tensor.FromArray(Uniform(64 * 64 * 12, 54), 1, 64, 64, 12);
        using var residual = Tensor.FromArray(Uniform(64 * 64 * 10, 55), 1, 64, 64, 10);
        var expected = Direct(conv, x, residual);
        using var y = conv.Forward(x, residual);
        Assert.NotNull(conv.Winograd);
        Assert.Equal(36L * 32 * 12 * sizeof(float), conv.Winograd!.ByteSize);
        Tolerance.AssertClose(expected, y.ToArray(), 2e-4, 1e-5, "Conv2d at 64x64 (Winograd) vs direct");
        // In place: the residual is the output.
        conv.Forward(x, residual, residual);
        Tolerance.AssertClose(expected, residual.ToArray(), 2e-4, 1e-5, "Conv2d at 64x64 in place vs direct");
    }

    [Fact]
    public void Winograd_switch_off_and_reference_kernels_run_without_winograd()
    {
        foreach (var turnOff in new Action<bool>[] { on => KernelSettings.AllowWinograd = on, on => KernelSettings.UseReference = !on })
        {
            bool allow = KernelSettings.AllowWinograd, reference = KernelSettings.UseReference;
            Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 64, 64, 9, 8, 3)));
            try
            {
                turnOff(false);
                using var conv = Layer(9, 8);
                using var x = Tensor.FromArray(Uniform(64 * 64 * 9, 56), 1, 64, 64, 9);
                using var residual = Tensor.FromArray(Uniform(64 * 64 * 8, 57), 1, 64, 64, 8);
                Assert.False(Conv2dKernel.PrefersWinograd(conv.Geometry(1, 64, 64)));
                var expected = Direct(conv, x, residual);
                using var y = conv.Forward(x, residual);
                Assert.Null(conv.Winograd);
                Tolerance.AssertClose(expected, y.ToArray(), 1e-5, 1e-5, "Conv2d at 64x64 with Winograd off vs direct");
            }
            finally
            {
                KernelSettings.AllowWinograd = allow;
                KernelSettings.UseReference = reference;
            }
        }
    }
}
