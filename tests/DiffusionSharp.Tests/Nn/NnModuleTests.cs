using DiffusionSharp.Nn;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Nn;

/// <summary>The Nn layers that have a fixture of their own, against the float64 PyTorch reference.</summary>
public class NnModuleTests
{
    [Theory]
    [InlineData("group_norm", 1e-6f)]
    [InlineData("group_norm_out", 1e-5f)]
    public void GroupNorm_matches_reference(string caseName, float eps)
    {
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Sd15);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "modules");
        using var norm = GroupNorm.Load(fixture.ModuleScope(caseName), config.NormNumGroups, config.BlockOutChannels[0], eps);
        using var x = fixture.Load($"{caseName}.x");
        using var output = norm.Forward(x);
        fixture.AssertClose($"{caseName}.output", output, 1e-6, 1e-5);
    }

    [Fact]
    public void DepthwiseSeparableConv2d_matches_reference()
    {
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Mobile);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Mobile, "modules");
        using var conv = DepthwiseSeparableConv2d.Load(fixture.ModuleScope("separable_conv"), config.BlockOutChannels[0], config.BlockOutChannels[1]);
        using var x = fixture.Load("separable_conv.x");
        using var output = conv.Forward(x);
        fixture.AssertClose("separable_conv.output", output, 1e-5, 1e-4);
        Assert.Equal(16 * 9 + 32 * 16 + 32, conv.ParameterCount);
    }

    [Fact]
    public void Linear_computes_x_times_w_transposed_plus_bias()
    {
        var weights = new InMemoryWeightSource();
        weights.Add("fc.weight", [1f, 2f, 3f, -1f, 0f, 0.5f], 2, 3); // [out 2, in 3]
        weights.Add("fc.bias", [10f, 20f], 2);
        using var linear = Linear.Load(new WeightScope(weights).Push("fc"), 3, 2);
        using var x = DiffusionSharp.Tensors.Tensor.FromArray([1f, 1f, 1f, 2f, 0f, -2f], 2, 3);
        using var y = linear.Forward(x);
        Assert.Equal([2, 2], y.Shape);
        Assert.Equal([16f, 19.5f, 6f, 17f], y.ToArray());
    }

    [Fact]
    public void Conv2d_with_asymmetric_padding_pads_right_and_bottom_only()
    {
        // A 2x2 kernel of ones, stride 1, padding (top 0, left 0, bottom 1, right 1) over a 2x2 input sums each pixel's
        // 2x2 window to the right and below, zeros outside.
        var weights = new InMemoryWeightSource();
        weights.Add("weight", [1f, 1f, 1f, 1f], 1, 1, 2, 2);
        using var conv = Conv2d.Load(new WeightScope(weights), 1, 1, kernelSize: 2, stride: 1, new Padding2d(0, 0, 1, 1), bias: false);
        using var x = DiffusionSharp.Tensors.Tensor.FromArray([1f, 2f, 3f, 4f], 1, 2, 2, 1);
        using var y = conv.Forward(x);
        Assert.Equal([1, 2, 2, 1], y.Shape);
        Assert.Equal([10f, 6f, 7f, 4f], y.ToArray());
    }
}
