using DiffusionSharp.Models.Unet;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Tests.Models.Unet;

/// <summary>The whole UNet of both tiny checkpoints against the float64 PyTorch reference (tools/reference/sdref).</summary>
public class Unet2DConditionModelTests
{
    // fp32 engine vs float64 reference through ~40 layers: max |diff| measured 1e-6..3e-6 on outputs of magnitude ~1;
    // the bound leaves room for kernels that sum in another order.
    internal const double Atol = 1e-5, Rtol = 1e-4;

    internal static Unet2DConditionModel Load(string model, Func<DiffusionSharp.Models.Configs.UnetConfig, DiffusionSharp.Models.Configs.UnetConfig>? edit = null)
    {
        using var weights = TinyModelFixtures.OpenWeights(model, "unet");
        var config = TinyModelFixtures.LoadUnetConfig(model);
        return Unet2DConditionModel.Load(new WeightScope(weights), edit?.Invoke(config) ?? config);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, "unet")]
    [InlineData(TinyModelFixtures.Sd15, "unet_odd")]
    [InlineData(TinyModelFixtures.Mobile, "unet")]
    [InlineData(TinyModelFixtures.Mobile, "unet_odd")]
    public void Matches_reference(string model, string caseName)
    {
        using var fixture = ComponentFixture.Open(model, "unet");
        using var unet = Load(model);
        using var sample = fixture.Load($"{caseName}.sample");
        using var context = fixture.Load($"{caseName}.encoder_hidden_states");
        float[] guidance = unet.Config.TimeCondProjDim is null ? [] : fixture.Values("unet.guidance_w")[..sample.Shape[0]];
        using var output = unet.Forward(sample, fixture.Values($"{caseName}.timestep"), context, guidance);
        fixture.AssertClose($"{caseName}.output", output, Atol, Rtol);
    }

    [Fact]
    public void Mobile_weights_with_softmax_attention_match_reference()
    {
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Mobile, "unet");
        using var unet = Load(TinyModelFixtures.Mobile, c => c with { AttentionActivation = DiffusionSharp.Kernels.Attention.AttentionActivation.Softmax });
        using var sample = fixture.Load("unet.sample");
        using var context = fixture.Load("unet.encoder_hidden_states");
        using var output = unet.Forward(sample, fixture.Values("unet.timestep"), context, fixture.Values("unet.guidance_w"));
        fixture.AssertClose("unet_softmax.output", output, Atol, Rtol);
    }
}
