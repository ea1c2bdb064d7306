using DiffusionSharp.Models.Clip;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Models.Clip;

/// <summary>The CLIP text encoder of both tiny checkpoints against the float64 PyTorch reference.</summary>
public class ClipTextModelTests
{
    // Two layers in fp32 vs float64: max |diff| measured 4e-7..7e-7 on outputs of magnitude ~1.
    internal const double Atol = 1e-5, Rtol = 1e-4;

    internal static ClipTextModel Load(string model)
    {
        using var weights = TinyModelFixtures.OpenWeights(model, "text_encoder");
        return ClipTextModel.Load(new WeightScope(weights), TinyModelFixtures.LoadClipConfig(model));
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Last_hidden_state_matches_reference(string model)
    {
        using var fixture = ComponentFixture.Open(model, "text_encoder");
        using var encoder = Load(model);
        int[] ids = fixture.Ints("text_encoder.input_ids"); // "a photo of a cat" and "", padded to 77
        using var output = encoder.Forward(ids, batchSize: 2);
        fixture.AssertClose("text_encoder.last_hidden_state", output, Atol, Rtol);
    }

    [Fact]
    public void Clip_skip_2_is_final_layer_norm_of_the_penultimate_hidden_state()
    {
        // Expected: the reference's hidden_states.1 (output of layer 1 of 2) through final_layer_norm, computed here in
        // double from the checkpoint's final_layer_norm weights.
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "text_encoder");
        using var encoder = Load(TinyModelFixtures.Sd15);
        var config = encoder.Config;
        using var weights = TinyModelFixtures.OpenWeights(TinyModelFixtures.Sd15, "text_encoder");
        var norm = new WeightScope(weights).Push("text_model").Push("final_layer_norm");
        float[] gamma = norm.Require("weight", config.HiddenSize), beta = norm.Require("bias", config.HiddenSize);
        float[] hidden = fixture.Values("text_encoder.hidden_states.1");
        var expected = new float[hidden.Length];
        int c = config.HiddenSize;
        for (int row = 0; row < hidden.Length / c; row++)
        {
            var x = hidden.AsSpan(row * c, c);
            double mean = 0, variance = 0;
            foreach (float v in x) mean += v;
            mean /= c;
            foreach (float v in x) variance += (v - mean) * (v - mean);
            variance /= c;
            for (int i = 0; i < c; i++) expected[row * c + i] = (float)((x[i] - mean) / Math.Sqrt(variance + config.LayerNormEps) * gamma[i] + beta[i]);
        }
        using var output = encoder.Forward(fixture.Ints("text_encoder.input_ids"), batchSize: 2, clipSkip: 2);
        Tolerance.AssertClose(expected, output.ToArray(), Atol, Rtol, "CLIP skip 2");
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Encoder_layer_matches_reference(string model)
    {
        var config = TinyModelFixtures.LoadClipConfig(model);
        using var fixture = ComponentFixture.Open(model, "modules");
        using var layer = ClipEncoderLayer.Load(fixture.ModuleScope("clip_layer"), config);
        using var hidden = fixture.Load("clip_layer.x");
        layer.Forward(hidden);
        fixture.AssertClose("clip_layer.output", hidden, Atol, Rtol);
    }

    [Fact]
    public void Single_file_checkpoint_text_encoder_matches_the_diffusers_folder()
    {
        // tiny-sd15.safetensors (LDM layout) holds the same weights; its text encoder keys are HF keys under a prefix.
        using var fixture = ComponentFixture.Open(TinyModelFixtures.Sd15, "text_encoder");
        using var weights = SafetensorsWeightSource.Open(Path.Combine(TinyModelFixtures.Root, "models", "tiny-sd15.safetensors"),
            prefix: "cond_stage_model.transformer.");
        using var encoder = ClipTextModel.Load(new WeightScope(weights), TinyModelFixtures.LoadClipConfig(TinyModelFixtures.Sd15));
        using var output = encoder.Forward(fixture.Ints("text_encoder.input_ids"), batchSize: 2);
        fixture.AssertClose("text_encoder.last_hidden_state", output, Atol, Rtol);
    }

    [Fact]
    public void Bad_inputs_are_rejected_with_a_reason()
    {
        using var encoder = Load(TinyModelFixtures.Sd15);
        var tooLong = new int[78];
        Assert.Contains("exceed", Assert.Throws<ArgumentException>(() => encoder.Forward(tooLong, 1)).Message);
        var outOfVocabulary = new int[77];
        outOfVocabulary[5] = 49408;
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => encoder.Forward(outOfVocabulary, 1)).Message);
        Assert.Throws<ArgumentException>(() => encoder.Forward(new int[77], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.Forward(new int[77], 1, clipSkip: 3));
    }

    [Fact]
    public void Parameter_count_is_the_checkpoint_size()
    {
        using var weights = TinyModelFixtures.OpenWeights(TinyModelFixtures.Sd15, "text_encoder");
        long stored = weights.Keys.Sum(k => weights.GetShape(k).Aggregate(1L, (a, d) => a * d));
        using var encoder = ClipTextModel.Load(new WeightScope(weights), TinyModelFixtures.LoadClipConfig(TinyModelFixtures.Sd15));
        Assert.Equal(stored, encoder.ParameterCount);
    }
}
