using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Models.Checkpoints;

namespace DiffusionSharp.Tests.Models.Checkpoints;

/// <summary>
/// The single-file tiny checkpoint and the diffusers folder were written by tools/fixtures/make_tiny_models.py from
/// the same weights, through the Python key conversion (tools/reference/sdref/convert.py). Our C# renaming of every
/// single-file key must land on exactly the folder's keys, holding the same values.
/// </summary>
public class LdmKeyMapTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "models");

    private static Dictionary<string, SafetensorsFile> OpenFolder(string name) => new()
    {
        [nameof(ModelComponent.Unet)] = SafetensorsFile.Open(Path.Combine(Fixtures, name, "unet", "diffusion_pytorch_model.safetensors")),
        [nameof(ModelComponent.Vae)] = SafetensorsFile.Open(Path.Combine(Fixtures, name, "vae", "diffusion_pytorch_model.safetensors")),
        [nameof(ModelComponent.TextEncoder)] = SafetensorsFile.Open(Path.Combine(Fixtures, name, "text_encoder", "model.safetensors")),
    };

    [Fact]
    public void Every_single_file_key_maps_onto_the_diffusers_folder_with_equal_values()
    {
        using var single = SafetensorsFile.Open(Path.Combine(Fixtures, "tiny-sd15.safetensors"));
        var folder = OpenFolder("tiny-sd15");
        try
        {
            var mapping = LdmKeyMap.Build(single.Tensors.Select(t => t.Name));
            Assert.Empty(mapping.Unknown);
            Assert.All(mapping.Ignored, k => Assert.True(k.EndsWith("position_ids") || !k.Contains('.'), k));

            var expected = folder.SelectMany(kv => kv.Value.Tensors.Select(t => (kv.Key, t.Name))).ToHashSet();
            var actual = mapping.Mapped.Values.Select(m => (m.Component.ToString(), m.DiffusersKey)).ToHashSet();
            Assert.Equal(expected.Count, mapping.Mapped.Count);
            Assert.Empty(expected.Except(actual));

            foreach (var (ldmKey, target) in mapping.Mapped)
            {
                var file = folder[target.Component.ToString()];
                float[] a = single.ReadFloat32(ldmKey), b = file.ReadFloat32(target.DiffusersKey);
                Assert.True(a.AsSpan().SequenceEqual(b), $"{ldmKey} -> {target.DiffusersKey}: values differ");
                long[] ldmShape = single.GetInfo(ldmKey).Shape, shape = file.GetInfo(target.DiffusersKey).Shape;
                long[] squeezed = target.SqueezeTrailingOnes ? ldmShape[..2] : ldmShape;
                Assert.True(squeezed.SequenceEqual(shape), $"{ldmKey}: shape {string.Join("x", ldmShape)} vs {string.Join("x", shape)}");
            }
        }
        finally
        {
            foreach (var f in folder.Values) f.Dispose();
        }
    }

    [Fact]
    public void Unknown_and_training_only_keys_are_reported_not_mapped()
    {
        var mapping = LdmKeyMap.Build([
            "model.diffusion_model.input_blocks.0.0.weight",
            "model_ema.decay", "alphas_cumprod", "lora_unet_down_blocks_0.alpha",
            "cond_stage_model.transformer.text_model.embeddings.position_ids",
        ]);
        Assert.Equal("conv_in.weight", mapping.Mapped["model.diffusion_model.input_blocks.0.0.weight"].DiffusersKey);
        Assert.Equal(["model_ema.decay", "alphas_cumprod", "cond_stage_model.transformer.text_model.embeddings.position_ids"], mapping.Ignored);
        Assert.Equal(["lora_unet_down_blocks_0.alpha"], mapping.Unknown);
    }

    [Fact]
    public void Family_detection_names_what_it_found()
    {
        using var single = SafetensorsFile.Open(Path.Combine(Fixtures, "tiny-sd15.safetensors"));
        var shapes = single.Tensors.ToDictionary(t => t.Name, t => t.Shape);
        var info = ModelFamilyDetector.Detect(shapes);
        Assert.Equal(ModelFamily.StableDiffusion1, info.Family);
        Assert.Equal(4, info.UnetInChannels);
        Assert.True(info.IsSupported);

        var sdxl = new Dictionary<string, long[]>(shapes) { ["conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"] = [1280] };
        Assert.Equal(ModelFamily.StableDiffusionXL, ModelFamilyDetector.Detect(sdxl).Family);

        var sd2 = shapes.ToDictionary(kv => kv.Key, kv => kv.Key.EndsWith("attn2.to_k.weight") ? new[] { kv.Value[0], 1024L } : kv.Value);
        var sd2Info = ModelFamilyDetector.Detect(sd2);
        Assert.Equal(ModelFamily.StableDiffusion2, sd2Info.Family);
        Assert.False(sd2Info.IsSupported);
        Assert.Contains("1024", sd2Info.Evidence);

        var other = ModelFamilyDetector.Detect(new Dictionary<string, long[]> { ["encoder.layers.0.weight"] = [4, 4], ["lm_head.weight"] = [4, 4] });
        Assert.Equal(ModelFamily.Unknown, other.Family);
        Assert.Contains("encoder, lm_head", other.Evidence);
    }
}
