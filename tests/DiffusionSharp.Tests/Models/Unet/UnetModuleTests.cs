using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Tests.Models.Unet;

/// <summary>Each UNet building block, bound at the checkpoint prefix its fixture case names, against the float64
/// PyTorch reference (tests/fixtures/components/*.modules.safetensors).</summary>
public class UnetModuleTests
{
    // One block in fp32 vs float64: max |diff| measured 1e-7..1.2e-6 on values of magnitude ~1.
    private const double Atol = 1e-5, Rtol = 1e-4;

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, "resnet", 0, 1)]
    [InlineData(TinyModelFixtures.Sd15, "resnet_same", 0, 0)]
    [InlineData(TinyModelFixtures.Mobile, "resnet_separable", 0, 1)]
    public void ResnetBlock2D_matches_reference(string model, string caseName, int inLevel, int outLevel)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        using var block = ResnetBlock2D.Load(fixture.ModuleScope(caseName), config.BlockOutChannels[inLevel], config.BlockOutChannels[outLevel],
            config.TimeEmbedDim, config.NormNumGroups, config.NormEps, config.SeparableConvPerBlock[outLevel]);
        using var x = fixture.Load($"{caseName}.x");
        using var temb = fixture.Load($"{caseName}.temb");
        using var output = block.Forward(x, temb);
        fixture.AssertClose($"{caseName}.output", output, Atol, Rtol);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, "transformer", 0)]
    [InlineData(TinyModelFixtures.Mobile, "transformer_cross_only", 1)]
    public void Transformer2DModel_matches_reference(string model, string caseName, int level)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        using var transformer = Transformer2DModel.Load(fixture.ModuleScope(caseName), config, config.BlockOutChannels[level],
            config.AttentionHeads[level], config.TransformerLayersPerBlock[level], config.SelfAttentionPerBlock[level]);
        using var x = fixture.Load($"{caseName}.x");
        using var context = fixture.Load($"{caseName}.context");
        using var output = transformer.Forward(x, context);
        fixture.AssertClose($"{caseName}.output", output, Atol, Rtol);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, "attn_self", 0, false, AttentionActivation.Softmax)]
    [InlineData(TinyModelFixtures.Sd15, "attn_cross", 0, true, AttentionActivation.Softmax)]
    [InlineData(TinyModelFixtures.Mobile, "attn_self_relu_shared_kv", 2, false, AttentionActivation.Relu)]
    [InlineData(TinyModelFixtures.Mobile, "attn_cross_relu_shared_kv", 1, true, AttentionActivation.Relu)]
    [InlineData(TinyModelFixtures.Mobile, "attn_self_softmax_shared_kv", 2, false, AttentionActivation.Softmax)]
    public void Attention_matches_reference(string model, string caseName, int level, bool cross, AttentionActivation activation)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        int channels = config.BlockOutChannels[level], heads = config.AttentionHeads[level];
        using var fixture = ComponentFixture.Open(model, "modules");
        using var attention = Attention.Load(fixture.ModuleScope(caseName), channels, heads, channels / heads,
            cross ? config.CrossAttentionDim : null, config.SharedKvProjection, activation);
        using var x = fixture.Load($"{caseName}.x");
        using var context = cross ? fixture.Load($"{caseName}.context") : null;
        using var output = attention.Forward(x, context);
        fixture.AssertClose($"{caseName}.output", output, Atol, Rtol);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, 0)]
    [InlineData(TinyModelFixtures.Mobile, 2)]
    public void FeedForward_matches_reference(string model, int level)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        using var ff = FeedForward.Load(fixture.ModuleScope("feed_forward"), config.BlockOutChannels[level], config.FeedForwardMult, config.FeedForwardActivation);
        using var x = fixture.Load("feed_forward.x");
        using var output = ff.Forward(x);
        fixture.AssertClose("feed_forward.output", output, Atol, Rtol);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, 0)]
    [InlineData(TinyModelFixtures.Mobile, 2)]
    public void BasicTransformerBlock_matches_reference(string model, int level)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        using var block = BasicTransformerBlock.Load(fixture.ModuleScope("basic_transformer_block"), config, config.BlockOutChannels[level],
            config.AttentionHeads[level], selfAttention: true);
        using var hidden = fixture.Load("basic_transformer_block.x");
        using var context = fixture.Load("basic_transformer_block.context");
        block.Forward(hidden, context);
        fixture.AssertClose("basic_transformer_block.output", hidden, Atol, Rtol);
    }

    [Fact]
    public void Downsample2D_matches_reference()
    {
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Sd15);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "modules");
        using var down = Downsample2D.Load(fixture.ModuleScope("downsample"), config.BlockOutChannels[0], padding: 1);
        using var x = fixture.Load("downsample.x");
        using var output = down.Forward(x);
        fixture.AssertClose("downsample.output", output, Atol, Rtol);
    }

    [Fact]
    public void Upsample2D_matches_reference()
    {
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Sd15);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "modules");
        using var up = Upsample2D.Load(fixture.ModuleScope("upsample"), config.BlockOutChannels[1]);
        using var x = fixture.Load("upsample.x");
        using var output = up.Forward(x);
        fixture.AssertClose("upsample.output", output, Atol, Rtol);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Timesteps_match_reference_for_fractional_timesteps(string model)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        var timesteps = new Timesteps(config.BlockOutChannels[0], config.FlipSinToCos, config.FreqShift);
        using var output = timesteps.Forward(fixture.Values("timestep_sinusoid.timesteps"));
        // Computed in double and rounded once, like the stored float64 reference: equal to the last bit in practice.
        fixture.AssertClose("timestep_sinusoid.output", output, 1e-7, 1e-6);
    }

    [Fact]
    public void GuidanceEmbedding_matches_reference()
    {
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Mobile);
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Mobile, "modules");
        using var output = GuidanceEmbedding.Forward(fixture.Values("guidance_embedding.w"), config.TimeCondProjDim!.Value);
        fixture.AssertClose("guidance_embedding.output", output, 1e-7, 1e-6);
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void TimestepEmbedding_matches_reference(string model)
    {
        var config = TinyModelFixtures.LoadUnetConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        using var embedding = TimestepEmbedding.Load(fixture.ModuleScope("time_embedding"), config.BlockOutChannels[0], config.TimeEmbedDim, config.TimeCondProjDim);
        using var sample = fixture.Load("time_embedding.sample");
        using var condition = config.TimeCondProjDim is null ? null : fixture.Load("time_embedding.condition");
        using var output = embedding.Forward(sample, condition);
        fixture.AssertClose("time_embedding.output", output, Atol, Rtol);
    }

    [Fact]
    public void Upsample2D_to_an_explicit_size_takes_pytorch_nearest_sources()
    {
        // 2 x 3 -> 3 x 5: rows floor(oy * 2/3) = 0, 0, 1; columns floor(ox * 3/5) = 0, 0, 1, 1, 2. Checked through an
        // identity-like convolution: a 3x3 kernel that only passes the centre tap of channel 0.
        var weights = new InMemoryWeightSource();
        var kernel = new float[9];
        kernel[4] = 1f;
        weights.Add("conv.weight", kernel, 1, 1, 3, 3);
        weights.Add("conv.bias", [0f], 1);
        using var up = Upsample2D.Load(new DiffusionSharp.Nn.WeightScope(weights), 1);
        using var x = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 1, 2, 3, 1);
        using var y = up.Forward(x, (3, 5));
        Assert.Equal([1f, 1f, 2f, 2f, 3f, 1f, 1f, 2f, 2f, 3f, 4f, 4f, 5f, 5f, 6f], y.ToArray());
    }
}
