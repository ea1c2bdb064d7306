using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Tests.Models.Shipped;

/// <summary>
/// The model that ships in models/emoji-mobile: it loads, it is the MobileDiffusion design its card claims, and for
/// fixed prompts and seeds the engine draws the images PyTorch draws from the same weights and noise
/// (tests/fixtures/shipped, written by tools/fixtures/make_shipped_fixture.py) — so a change that breaks the
/// engine's numerics on the real model is caught.
/// </summary>
public class ShippedModelTests : IClassFixture<ShippedModelTests.Loaded>
{
    public sealed class Loaded : IDisposable
    {
        public StableDiffusionModel Model { get; } = ModelLoader.Load(Path.Combine(AppContext.BaseDirectory, "models", "emoji-mobile"));
        public void Dispose() => Model.Dispose();
    }

    private readonly StableDiffusionModel _model;

    public ShippedModelTests(Loaded loaded) => _model = loaded.Model;

    [Fact]
    public void It_is_the_MobileDiffusion_design_the_card_describes()
    {
        var u = _model.Unet.Config;
        Assert.Equal(ModelFamily.MobileDiffusion, _model.Family.Family);
        Assert.Equal([96, 160, 224], u.BlockOutChannels);
        Assert.Equal([0, 1, 1], u.TransformerLayersPerBlock);          // no transformer at the highest resolution
        Assert.Equal([false, false, true], u.SelfAttentionPerBlock);    // cross-attention only in the middle
        Assert.Equal(2, u.MidBlockTransformerLayers);
        Assert.True(u.SharedKvProjection);
        Assert.Equal(AttentionActivation.Relu, u.AttentionActivation);
        Assert.Equal(GateKind.Swiglu, u.FeedForwardActivation);
        Assert.Equal(3, u.FeedForwardMult);
        Assert.Equal([false, true, true], u.SeparableConvPerBlock);
        Assert.Equal([1, 1, 2], u.LayersPerBlock);
        Assert.NotNull(u.TimeCondProjDim);
        Assert.Equal(4, _model.LatentScale);
        Assert.Equal(DiffusionSharp.Sampling.ModelPrediction.VPrediction, _model.Scheduler.Prediction);
        Assert.Equal((64, 64, 8, 3.0, "ddim_trailing", "simple", 1.0),
            (_model.Defaults.Width, _model.Defaults.Height, _model.Defaults.Steps, _model.Defaults.CfgScale,
             _model.Defaults.Sampler, _model.Defaults.Scheduler, _model.Defaults.GuidanceEmbeddingOffset));
        Assert.InRange(_model.Unet.ParameterCount, 11_100_000, 11_200_000);          // the card: 11.15 M
        Assert.InRange(_model.TextEncoder.ParameterCount, 5_150_000, 5_250_000);     // the card: 5.20 M
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Draws_what_PyTorch_draws_for_the_same_seed(int index)
    {
        using var fixture = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", "shipped", "emoji-mobile.safetensors"));
        string prompt = fixture.Metadata[$"case{index}.prompt"];
        long seed = long.Parse(fixture.Metadata[$"case{index}.seed"]);
        float[] expected = fixture.ReadFloat32($"case{index}.image");                // [1, 3, 64, 64] in [-1, 1]

        var result = new TextToImagePipeline(_model).Generate(new GenerationRequest { Prompt = prompt, Seed = seed, Rng = RngType.Cpu });
        var image = result.Images.Single().Image;
        Assert.Equal((64, 64), (image.Width, image.Height));

        int offByMore = 0;
        double squared = 0;
        for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
        for (int c = 0; c < 3; c++)
        {
            double e = Math.Clamp((expected[(c * 64 + y) * 64 + x] + 1) / 2, 0, 1) * 255;
            double a = image.Pixels[(y * 64 + x) * 3 + c];
            if (Math.Abs(a - Math.Floor(e)) > 1) offByMore++;
            squared += (a - e) * (a - e);
        }
        double psnr = 10 * Math.Log10(255.0 * 255.0 / (squared / (64 * 64 * 3)));
        Assert.True(offByMore == 0 && psnr > 45, $"'{prompt}' seed {seed}: {offByMore} channel values off by more than 1 level, PSNR {psnr:F1} dB");
    }
}
