using DiffusionSharp.Models.Unet;
using DiffusionSharp.Models.Vae;
using DiffusionSharp.Nn;

namespace DiffusionSharp.Tests.Models.Vae;

/// <summary>The VAE of both tiny checkpoints and its blocks against the float64 PyTorch reference.</summary>
public class AutoencoderKLTests
{
    // fp32 vs float64: max |diff| measured 1e-6 (encoder, blocks) to 1e-5 (tiny-sd15 decoder, 4 levels, |image| up to 3).
    private const double Atol = 3e-5, Rtol = 1e-4;

    private static AutoencoderKL Load(string model, bool loadEncoder = true)
    {
        using var weights = TinyModelFixtures.OpenWeights(model, "vae");
        return AutoencoderKL.Load(new WeightScope(weights), TinyModelFixtures.LoadVaeConfig(model), loadEncoder);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Decode_matches_reference(string model)
    {
        using var fixture = ComponentFixture.Open(model, "vae");
        using var vae = Load(model, loadEncoder: false);
        Assert.False(vae.HasEncoder);
        using var latents = fixture.Load("decode.latents");
        using var image = vae.Decode(latents);
        fixture.AssertClose("decode.image", image, Atol, Rtol);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Encode_matches_reference(string model)
    {
        using var fixture = ComponentFixture.Open(model, "vae");
        using var vae = Load(model);
        using var image = fixture.Load("encode.image");
        var (mean, logVar) = vae.Encode(image);
        using (mean)
        using (logVar)
        {
            fixture.AssertClose("encode.mean", mean, Atol, Rtol);
            fixture.AssertClose("encode.logvar", logVar, Atol, Rtol);
        }
    }

    [Fact]
    public void Encode_without_encoder_is_refused()
    {
        using var vae = Load(TinyModelFixtures.Sd15, loadEncoder: false);
        using var image = new DiffusionSharp.Tensors.Tensor(1, 16, 16, 3);
        Assert.Throws<InvalidOperationException>(() => vae.Encode(image));
    }

    [Fact]
    public void Mid_block_attention_matches_reference()
    {
        var config = TinyModelFixtures.LoadVaeConfig(TinyModelFixtures.Sd15);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "modules");
        using var attention = AttentionBlock.Load(fixture.ModuleScope("vae_attention"), config.BlockOutChannels[^1], config.NormNumGroups);
        using var x = fixture.Load("vae_attention.x");
        using var output = attention.Forward(x);
        fixture.AssertClose("vae_attention.output", output, Atol, Rtol);
    }

    [Fact]
    public void Resnet_with_shortcut_matches_reference()
    {
        var config = TinyModelFixtures.LoadVaeConfig(TinyModelFixtures.Sd15);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "modules");
        using var resnet = ResnetBlock2D.Load(fixture.ModuleScope("vae_resnet"), config.BlockOutChannels[2], config.BlockOutChannels[1], null, config.NormNumGroups, 1e-6f);
        using var x = fixture.Load("vae_resnet.x");
        using var output = resnet.Forward(x, null);
        fixture.AssertClose("vae_resnet.output", output, Atol, Rtol);
    }

    [Fact]
    public void Downsample_pads_right_and_bottom_as_reference()
    {
        var config = TinyModelFixtures.LoadVaeConfig(TinyModelFixtures.Sd15);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "modules");
        using var down = Downsample2D.Load(fixture.ModuleScope("vae_downsample"), config.BlockOutChannels[0], padding: 0);
        using var x = fixture.Load("vae_downsample.x"); // [1, 9, 8, C]: odd height
        using var output = down.Forward(x);
        fixture.AssertClose("vae_downsample.output", output, Atol, Rtol);
    }
}
