using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Nn;

/// <summary>
/// A gated feed-forward projection (<see cref="Linear.LoadGated"/>): its interleaved rows still map back to the
/// checkpoint's (what the quantizer reads), and the gate in its epilogue equals the checkpoint-order projection followed
/// by the gate, computed here from the raw weights in double.
/// </summary>
public class GatedLinearTests
{
    private static (InMemoryWeightSource Source, float[] Weight, float[] Bias) Weights(int inner, int k)
    {
        var rng = new Random(5);
        var weight = Enumerable.Range(0, 2 * inner * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var bias = Enumerable.Range(0, 2 * inner).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var source = new InMemoryWeightSource();
        source.Add("proj.weight", weight, 2 * inner, k);
        source.Add("proj.bias", bias, 2 * inner);
        return (source, weight, bias);
    }

    [Theory]
    [InlineData(32, true)]
    [InlineData(24, false)]
    public void Weight_rows_map_back_to_the_checkpoint(int inner, bool interleaved)
    {
        const int k = 5;
        var (source, weight, _) = Weights(inner, k);
        using var layer = Linear.LoadGated(new WeightScope(source).Push("proj"), k, inner);
        Assert.Equal(interleaved, layer.CanGateInEpilogue);
        Assert.Equal(interleaved ? GemmKernel.GateBlock : inner, layer.GateBlockWidth);
        var rows = new HashSet<int>();
        for (int o = 0; o < 2 * inner; o++)
        {
            rows.Add(layer.WeightRow(o));
            for (int i = 0; i < k; i++) Assert.Equal(weight[o * k + i], layer.Weight![layer.WeightRow(o), i]);
        }
        Assert.Equal(2 * inner, rows.Count);
    }

    [Fact]
    public void Forward_gated_equals_the_gate_over_the_checkpoint_projection()
    {
        const int inner = 48, k = 7, tokens = 9;
        var (source, weight, bias) = Weights(inner, k);
        using var layer = Linear.LoadGated(new WeightScope(source).Push("proj"), k, inner);
        var rng = new Random(6);
        var xv = Enumerable.Range(0, tokens * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var x = Tensor.FromArray(xv, 1, tokens, k);
        using var output = new Tensor(tokens, inner);
        layer.ForwardGated(x, output, GateKind.Geglu);
        var expected = new float[tokens * inner];
        for (int t = 0; t < tokens; t++)
        for (int j = 0; j < inner; j++)
        {
            double value = bias[j], gate = bias[inner + j];
            for (int i = 0; i < k; i++)
            {
                value += (double)xv[t * k + i] * weight[j * k + i];
                gate += (double)xv[t * k + i] * weight[(inner + j) * k + i];
            }
            expected[t * inner + j] = (float)(value * Activations.Reference(ActivationKind.Gelu, gate));
        }
        Tolerance.AssertClose(expected, output.ToArray(), 1e-5, 1e-5, "gated projection");
    }
}
