using DiffusionSharp.Models.Vae;
using DiffusionSharp.Nn;

namespace DiffusionSharp.Tests.Models.Unet;

/// <summary>Parameter counts and FLOP estimates (for <c>diffusion info</c>) of the tiny checkpoints.</summary>
public class ModelSizeTests
{
    /// <summary>
    /// Expected FLOPs were counted in PyTorch on the reference modules (tools/reference/sdref), batch 1, 77 context
    /// tokens: forward hooks on every nn.Conv2d (output elements x Cin/groups x kh x kw) and nn.Linear (output elements x
    /// in_features), plus 2 x B x heads x Tq x Tk x d for the two products of each scaled_dot_product_attention call;
    /// FLOPs = 2 x that sum.
    /// </summary>
    [Theory]
    [InlineData(TinyModelFixtures.Sd15, 8, 8, 22_780_160L)]
    [InlineData(TinyModelFixtures.Sd15, 7, 5, 16_083_456L)]
    [InlineData(TinyModelFixtures.Sd15, 64, 64, 7_031_250_944L)]
    [InlineData(TinyModelFixtures.Mobile, 8, 8, 9_932_544L)]
    [InlineData(TinyModelFixtures.Mobile, 7, 5, 7_434_816L)]
    [InlineData(TinyModelFixtures.Mobile, 64, 64, 653_294_592L)]
    public void Unet_flops_match_a_pytorch_count(string model, int height, int width, long expected)
    {
        using var unet = Unet2DConditionModelTests.Load(model);
        Assert.Equal(expected, unet.FlopsPerForward(height, width, contextTokens: 77));
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, 305_547_264L)]
    [InlineData(TinyModelFixtures.Mobile, 21_697_664L)]
    public void Vae_decode_flops_match_a_pytorch_count(string model, long expected)
    {
        using var weights = TinyModelFixtures.OpenWeights(model, "vae");
        using var vae = AutoencoderKL.Load(new WeightScope(weights), TinyModelFixtures.LoadVaeConfig(model), loadEncoder: false);
        Assert.Equal(expected, vae.DecodeFlops(8, 8));
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, "unet")]
    [InlineData(TinyModelFixtures.Mobile, "unet")]
    [InlineData(TinyModelFixtures.Sd15, "vae")]
    [InlineData(TinyModelFixtures.Mobile, "vae")]
    public void Parameter_count_is_the_number_of_stored_weights(string model, string component)
    {
        using var weights = TinyModelFixtures.OpenWeights(model, component);
        long stored = weights.Keys.Sum(k => weights.GetShape(k).Aggregate(1L, (a, d) => a * d));
        var scope = new WeightScope(weights);
        using Module loaded = component == "unet"
            ? DiffusionSharp.Models.Unet.Unet2DConditionModel.Load(scope, TinyModelFixtures.LoadUnetConfig(model))
            : AutoencoderKL.Load(scope, TinyModelFixtures.LoadVaeConfig(model));
        Assert.Equal(stored, loaded.ParameterCount);
        Assert.Empty(scope.UnusedKeys());
    }
}
