using DiffusionSharp.IO;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Nn;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Nn;

/// <summary>Binding weights by key: clear errors for missing and misshapen tensors, prefixes, key maps, unused keys.</summary>
public class WeightBindingTests
{
    [Fact]
    public void Missing_tensor_names_full_key_and_file()
    {
        string path = TinyModelFixtures.WeightsPath(TinyModelFixtures.Sd15, "unet");
        const string dropped = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight";
        using var weights = SafetensorsWeightSource.Open(path, keyMap: k => k == dropped ? null : k);
        var e = Assert.Throws<MissingWeightException>(() => Unet2DConditionModel.Load(new WeightScope(weights), TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Sd15)));
        Assert.Equal(dropped, e.Key);
        Assert.Contains($"'{dropped}'", e.Message);
        Assert.Contains(path, e.Message);
        Assert.IsAssignableFrom<FileFormatException>(e);
    }

    [Fact]
    public void Wrong_shape_names_full_key_file_and_both_shapes()
    {
        string path = TinyModelFixtures.WeightsPath(TinyModelFixtures.Sd15, "unet");
        using var weights = SafetensorsWeightSource.Open(path);
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Sd15) with { CrossAttentionDim = 48 };
        var e = Assert.Throws<WeightShapeException>(() => Unet2DConditionModel.Load(new WeightScope(weights), config));
        Assert.Equal("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", e.Key);
        Assert.Equal([16L, 48L], e.Expected);
        Assert.Equal([16L, 32L], e.Found);
        Assert.Contains(path, e.Message);
        Assert.Contains("[16, 32]", e.Message);
        Assert.Contains("[16, 48]", e.Message);
    }

    [Fact]
    public void Scope_builds_keys_and_records_consumed_ones()
    {
        var weights = new InMemoryWeightSource();
        weights.Add("down_blocks.0.norm.weight", [1f, 2f], 2);
        weights.Add("down_blocks.0.norm.bias", [0f, 0f], 2);
        weights.Add("unused.weight", [1f], 1);
        var root = new WeightScope(weights);
        var norm = root.Push("down_blocks").Push(0).Push("norm");
        Assert.Equal("down_blocks.0.norm.weight", norm.KeyOf("weight"));
        Assert.Equal([1f, 2f], norm.Require("weight", 2));
        norm.Require("bias", 2);
        Assert.Equal(["down_blocks.0.norm.bias", "down_blocks.0.norm.weight"], root.ConsumedKeys.Order(StringComparer.Ordinal));
        Assert.Equal(["unused.weight"], root.UnusedKeys());
        Assert.Throws<ArgumentException>(() => root.Push("a.b"));
    }

    [Fact]
    public void Loading_a_whole_component_consumes_every_tensor_of_its_file()
    {
        using var weights = TinyModelFixtures.OpenWeights(TinyModelFixtures.Mobile, "unet");
        var scope = new WeightScope(weights);
        using var unet = Unet2DConditionModel.Load(scope, TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Mobile));
        Assert.Empty(scope.UnusedKeys());
        Assert.Equal(weights.Keys.Count(), scope.ConsumedKeys.Count);
    }

    [Fact]
    public void Prefix_selects_one_component_of_a_single_file_checkpoint()
    {
        string path = Path.Combine(TinyModelFixtures.Root, "models", "tiny-sd15.safetensors");
        using var text = SafetensorsWeightSource.Open(path, prefix: "cond_stage_model.transformer.");
        Assert.Contains("text_model.final_layer_norm.weight", text.Keys);
        Assert.DoesNotContain(text.Keys, k => k.StartsWith("model.", StringComparison.Ordinal) || k.StartsWith("first_stage_model.", StringComparison.Ordinal));
        var missing = Assert.Throws<MissingWeightException>(() => new WeightScope(text).Require("nope", 1));
        Assert.Contains("under prefix 'cond_stage_model.transformer.'", missing.Message);
    }

    [Fact]
    public void Two_tensors_mapped_to_one_key_are_rejected()
    {
        string path = TinyModelFixtures.WeightsPath(TinyModelFixtures.Sd15, "vae");
        var e = Assert.Throws<FileFormatException>(() => SafetensorsWeightSource.Open(path, keyMap: k => k.EndsWith(".bias", StringComparison.Ordinal) ? "bias" : k));
        Assert.Contains("both provide weight 'bias'", e.Message);
    }
}
