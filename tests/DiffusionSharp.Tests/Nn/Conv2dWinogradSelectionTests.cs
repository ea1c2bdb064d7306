using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Nn;

/// <summary>
/// Conv2d's choice between implicit GEMM and Winograd: the rule, the per-call transformed filters, and the switches
/// (<see cref="KernelSettings.AllowWinograd"/>, the reference kernels). The switches are process-wide, so these run in
/// the collection that runs alone.
/// </summary>
[Collection(ReferenceKernelsCollection.Name)]
public unsafe class Conv2dWinogradSelectionTests
{
    [Fact]
    public void Rule_picks_winograd_for_3x3_stride_1_from_32x32_output_pixels_and_128_channels()
    {
        Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 64, 64, 320, 320, 3)));
        Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 512, 512, 128, 128, 3)));
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 512, 512, 128, 3, 3)));   // VAE conv_out
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(2, 64, 64, 4, 320, 3)));     // UNet conv_in
        Assert.True(Conv2dKernel.PrefersWinograd(new Conv2dGeometry(1, 66, 66, 128, 128, 3, 3)));  // unpadded, 64x64 out
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 64, 64, 48, 48, 3)));     // the shipped VAE's 64x64 level
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 32, 32, 96, 96, 3)));     // and its 32x32 level
        Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(2, 32, 32, 640, 640, 3)));    // UNet 32x32 level
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(2, 16, 16, 1280, 1280, 3))); // 16x16: the per-call transform eats the gain
        Assert.False(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 31, 33, 128, 128, 3)));   // 1023 output pixels
        Assert.True(Conv2dKernel.TransformsInTasks(Conv2dGeometry.Same(2, 32, 32, 640, 640, 3)));
        Assert.False(Conv2dKernel.TransformsInTasks(Conv2dGeometry.Same(2, 64, 64, 320, 320, 3)));
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

    /// <summary>The layer's output when it runs the kernel named: Winograd over its 3x3 filters, or the implicit GEMM.</summary>
    private static float[] Kernel(Conv2d conv, Tensor x, Tensor residual, bool winograd)
    {
        var g = conv.Geometry(x.Shape[0], x.Shape[1], x.Shape[2]);
        var y = new float[residual.ToArray().Length];
        fixed (float* py = y, pb = conv.Bias)
        {
            if (winograd) Conv2dKernel.ForwardWinograd(x.Data, g, conv.Weights!, pb, py, residual.Data);
            else Conv2dKernel.Forward(x.Data, g, conv.Weights!, pb, py, residual.Data);
        }
        return y;
    }

    /// <summary>
    /// Which kernel ran is seen in the bits: Winograd and the implicit GEMM round differently, so the layer's output
    /// equals one of them bitwise and not the other. The layer keeps no transformed filters: a second layer's
    /// Winograd call between two of the first (scratch reused at another size) changes nothing.
    /// </summary>
    [Fact]
    public void Conv2d_runs_winograd_from_32x32_outputs_over_its_own_filters_and_matches_the_direct_convolution()
    {
        using var conv = Layer(128, 130);
        using var small = Tensor.FromArray(Uniform(16 * 16 * 128, 53), 1, 16, 16, 128);
        using var smallResidual = Tensor.FromArray(Uniform(16 * 16 * 130, 58), 1, 16, 16, 130);
        using var smallOut = conv.Forward(small, smallResidual);
        AssertBitwiseEqual(Kernel(conv, small, smallResidual, winograd: false), smallOut.ToArray(), "Conv2d at 16x16 vs implicit GEMM");

        // 32x32: Winograd with the filters transformed inside the tasks.
        using var mid = Tensor.FromArray(Uniform(32 * 32 * 128, 60), 1, 32, 32, 128);
        using var midResidual = Tensor.FromArray(Uniform(32 * 32 * 130, 61), 1, 32, 32, 130);
        var midWinograd = Kernel(conv, mid, midResidual, winograd: true);
        Assert.NotEqual(Kernel(conv, mid, midResidual, winograd: false), midWinograd);
        using var midOut = conv.Forward(mid, midResidual);
        AssertBitwiseEqual(midWinograd, midOut.ToArray(), "Conv2d at 32x32 vs Winograd kernel");
        Tolerance.AssertClose(Direct(conv, mid, midResidual), midOut.ToArray(), 5e-4, 1e-5, "Conv2d at 32x32 (Winograd) vs direct");

        // 64x64: Winograd with the filters transformed all at once.
        using var x = Tensor.FromArray(Uniform(64 * 64 * 128, 54), 1, 64, 64, 128);
        using var residual = Tensor.FromArray(Uniform(64 * 64 * 130, 55), 1, 64, 64, 130);
        var winograd = Kernel(conv, x, residual, winograd: true);
        Assert.NotEqual(Kernel(conv, x, residual, winograd: false), winograd);
        using var y = conv.Forward(x, residual);
        AssertBitwiseEqual(winograd, y.ToArray(), "Conv2d at 64x64 vs Winograd kernel");

        using (var other = Layer(130, 128))
        using (var otherX = Tensor.FromArray(Uniform(64 * 64 * 130, 59), 1, 64, 64, 130))
        using (other.Forward(otherX))
        {
        }
        // In place: the residual is the output.
        conv.Forward(x, residual, residual);
        AssertBitwiseEqual(winograd, residual.ToArray(), "Conv2d at 64x64 in place, after another layer, vs Winograd kernel");
    }

    [Fact]
    public void Winograd_switch_off_and_reference_kernels_run_without_winograd()
    {
        foreach (var turnOff in new Action<bool>[] { on => KernelSettings.AllowWinograd = on, on => KernelSettings.UseReference = !on })
        {
            bool allow = KernelSettings.AllowWinograd, reference = KernelSettings.UseReference;
            Assert.True(Conv2dKernel.PrefersWinograd(Conv2dGeometry.Same(1, 32, 32, 128, 128, 3)));
            try
            {
                turnOff(false);
                using var conv = Layer(128, 128);
                using var x = Tensor.FromArray(Uniform(32 * 32 * 128, 56), 1, 32, 32, 128);
                using var residual = Tensor.FromArray(Uniform(32 * 32 * 128, 57), 1, 32, 32, 128);
                Assert.False(Conv2dKernel.PrefersWinograd(conv.Geometry(1, 32, 32)));
                var expected = Direct(conv, x, residual);
                using var y = conv.Forward(x, residual);
                AssertBitwiseEqual(Kernel(conv, x, residual, winograd: false), y.ToArray(), "Conv2d at 32x32 with Winograd off vs Conv2dKernel.Forward");
                Tolerance.AssertClose(expected, y.ToArray(), 1e-4, 1e-5, "Conv2d at 32x32 with Winograd off vs direct");
            }
            finally
            {
                KernelSettings.AllowWinograd = allow;
                KernelSettings.UseReference = reference;
            }
        }
    }

    /// <summary>Under the reference kernels a direct Winograd call over layer filters runs the double twins (transform and kernel).</summary>
    [Fact]
    public void Winograd_over_layer_filters_under_the_reference_kernels_runs_the_double_twins()
    {
        bool reference = KernelSettings.UseReference;
        try
        {
            KernelSettings.UseReference = true;
            using var conv = Layer(9, 8);
            using var x = Tensor.FromArray(Uniform(12 * 13 * 9, 61), 1, 12, 13, 9);
            using var residual = Tensor.FromArray(Uniform(12 * 13 * 8, 62), 1, 12, 13, 8);
            var g = conv.Geometry(1, 12, 13);
            var expected = new float[12 * 13 * 8];
            using (var twin = WinogradWeights.Reference(conv.Weights!))
                fixed (float* pe = expected, pb = conv.Bias) Conv2dKernel.ForwardWinogradReference(x.Data, g, twin, pb, pe, residual.Data);
            AssertBitwiseEqual(expected, Kernel(conv, x, residual, winograd: true), "Winograd over layer filters, reference kernels");
        }
        finally
        {
            KernelSettings.UseReference = reference;
        }
    }
}
