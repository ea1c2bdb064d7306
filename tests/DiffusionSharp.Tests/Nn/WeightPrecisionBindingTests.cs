using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Nn;

/// <summary>
/// <see cref="Linear"/> and <see cref="Conv2d"/> pack their weights in the scope's <see cref="WeightScope.Precision"/>:
/// with fp16-representable weights (what an fp16 checkpoint holds) fp16 storage gives exactly the fp32 layer's output;
/// bf16 storage rounds the weights, so its output moves by about bf16's relative precision (2^-9) and no more.
/// </summary>
public class WeightPrecisionBindingTests
{
    private const int In = 24, Out = 40;

    /// <summary>Weights already rounded through fp16, as read from an fp16 file.</summary>
    private static float[] Fp16Values(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(Half)(random.NextSingle() * 2 - 1)).ToArray();
    }

    private static InMemoryWeightSource Weights()
    {
        var weights = new InMemoryWeightSource();
        weights.Add("proj.weight", Fp16Values(Out * In, 1), Out, In);
        weights.Add("proj.bias", Fp16Values(Out, 2), Out);
        weights.Add("conv.weight", Fp16Values(Out * In * 9, 3), Out, In, 3, 3);
        weights.Add("conv.bias", Fp16Values(Out, 4), Out);
        return weights;
    }

    private static (float[] Linear, float[] Conv) Outputs(WeightPrecision precision, WeightPrecision? expectedStorage = null)
    {
        var scope = new WeightScope(Weights(), precision: precision);
        Assert.Equal(precision, scope.Push("proj").Precision);
        using var linear = Linear.Load(scope.Push("proj"), In, Out);
        using var conv = Conv2d.Load(scope.Push("conv"), In, Out, 3, padding: 1);
        Assert.Equal(expectedStorage ?? precision, linear.Weight!.Precision);
        Assert.Equal(expectedStorage ?? precision, conv.Weights!.Matrix.Precision);
        using var x = Tensor.FromArray(Fp16Values(2 * 5 * 7 * In, 5), 2, 5, 7, In);   // [2, 5, 7, In]
        using var y = linear.Forward(x);                                                // [2, 5, 7, Out]
        using var z = conv.Forward(x);                                                  // [2, 5, 7, Out]
        return (y.ToArray(), z.ToArray());
    }

    [Fact]
    public void Fp16_storage_of_an_fp16_checkpoint_gives_the_fp32_layers_output_exactly()
    {
        var fp32 = Outputs(WeightPrecision.Float32);
        var fp16 = Outputs(WeightPrecision.Float16);
        Assert.Equal(fp32.Linear, fp16.Linear);
        Assert.Equal(fp32.Conv, fp16.Conv);
    }

    [Fact]
    public void Bf16_storage_moves_the_output_by_bf16_rounding_only()
    {
        var fp32 = Outputs(WeightPrecision.Float32);
        var bf16 = Outputs(WeightPrecision.BFloat16);
        Assert.NotEqual(fp32.Linear, bf16.Linear);
        Assert.NotEqual(fp32.Conv, bf16.Conv);
        // Each weight moves by at most 2^-9 of itself; a sum of K products of |x|, |w| <= 1 by at most K * 2^-9.
        Tolerance.AssertClose(fp32.Linear, bf16.Linear, In * Math.Pow(2, -9), 0, "bf16 linear vs fp32");
        Tolerance.AssertClose(fp32.Conv, bf16.Conv, 9 * In * Math.Pow(2, -9), 0, "bf16 conv vs fp32");
    }

    [Fact]
    public void Default_scope_packs_fp32()
    {
        var scope = new WeightScope(Weights());
        Assert.Equal(WeightPrecision.Float32, scope.Precision);
        using var linear = Linear.Load(scope.Push("proj"), In, Out);
        Assert.Equal(WeightPrecision.Float32, linear.Weight!.Precision);
        Assert.Equal((long)2 * PackedMatrix.PanelWidth * In * sizeof(float), linear.Weight.ByteSize);
    }
}
