using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Sampling;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Cli;
using DiffusionSharp.Tests.IO;

namespace DiffusionSharp.Tests.Models.Checkpoints;

/// <summary>
/// <see cref="ModelLoader"/> on the tiny checkpoints in both layouts users have (tools/fixtures/make_tiny_models.py
/// wrote them from the same weights), and on folders and files broken in one way each.
/// </summary>
public class ModelLoaderTests
{
    private static StableDiffusionModel LoadSingleFile(string path) =>
        ModelLoader.Load(path, new ModelLoadOptions { ConfigFolder = TestCheckpoints.Sd15Folder });

    /// <summary>A deterministic input with values of both signs and no pattern the layers could cancel.</summary>
    private static Tensor Input(params int[] shape)
    {
        var t = new Tensor(shape);
        var span = t.Span;
        for (int i = 0; i < span.Length; i++) span[i] = MathF.Sin(0.37f * i + 0.1f) * 1.5f;
        return t;
    }

    [Fact]
    public void Single_file_and_diffusers_folder_give_the_same_model()
    {
        using var folder = ModelLoader.Load(TestCheckpoints.Sd15Folder);
        using var single = LoadSingleFile(TestCheckpoints.Sd15SingleFile);

        Assert.Equal(ModelFamily.StableDiffusion1, single.Family.Family);
        Assert.Equal(folder.Family.Family, single.Family.Family);
        Assert.Equal(folder.Unet.Config, single.Unet.Config);
        Assert.Equal(folder.TextEncoder.Config, single.TextEncoder.Config);
        Assert.Equal(folder.Vae.Config, single.Vae.Config);
        Assert.Equal((64, 64), (single.Defaults.Width, single.Defaults.Height));   // the config folder's sample_size, as for the folder
        Assert.Equal(folder.Defaults, single.Defaults);
        Assert.Equal(folder.Scheduler, single.Scheduler);

        // Same weights and same kernels: bitwise equal outputs of every component.
        int[] ids = folder.Tokenizer.Tokenize("a photo of a cat", 77).InputIds;
        using var folderText = folder.TextEncoder.Forward(ids, 1);
        using var singleText = single.TextEncoder.Forward(ids, 1);
        Assert.Equal(folderText.Span.ToArray(), singleText.Span.ToArray());

        using var sample = Input(1, 8, 8, 4);                                      // [1, h, w, C]
        using var folderOut = folder.Unet.Forward(sample, [500.5f], folderText);    // [1, h, w, C]
        using var singleOut = single.Unet.Forward(sample, [500.5f], singleText);
        Assert.Equal(folderOut.Span.ToArray(), singleOut.Span.ToArray());
        Assert.Contains(folderOut.Span.ToArray(), v => v != 0);

        using var folderImage = folder.Vae.Decode(sample);                         // [1, 64, 64, 3]
        using var singleImage = single.Vae.Decode(sample);
        Assert.Equal(folderImage.Span.ToArray(), singleImage.Span.ToArray());
    }

    [Fact]
    public void Sixteen_bit_weight_storage_is_exact_in_fp16_and_close_in_bf16_for_every_component()
    {
        using var fp32 = ModelLoader.Load(TestCheckpoints.Sd15Folder);
        using var fp16 = ModelLoader.Load(TestCheckpoints.Sd15Folder, new ModelLoadOptions { Precision = WeightPrecision.Float16 });
        using var bf16 = ModelLoader.Load(TestCheckpoints.Sd15Folder, new ModelLoadOptions { Precision = WeightPrecision.BFloat16 });
        int[] ids = fp32.Tokenizer.Tokenize("a photo of a cat", 77).InputIds;
        using var sample = Input(1, 8, 8, 4);                                      // [1, h, w, C]

        // The files hold fp16 weights: fp16 storage loses nothing, so every component's output is the fp32 one, bit for bit.
        // bf16 rounds the weights (2^-9 relative): outputs differ, but only by that much.
        var outputs = new List<(string Component, float[] Fp32, float[] Fp16, float[] Bf16)>();
        using (var t32 = fp32.TextEncoder.Forward(ids, 1))
        using (var t16 = fp16.TextEncoder.Forward(ids, 1))
        using (var tb = bf16.TextEncoder.Forward(ids, 1))
        using (var u32 = fp32.Unet.Forward(sample, [500.5f], t32))                 // [1, h, w, C]
        using (var u16 = fp16.Unet.Forward(sample, [500.5f], t32))
        using (var ub = bf16.Unet.Forward(sample, [500.5f], t32))
        using (var v32 = fp32.Vae.Decode(sample))                                   // [1, 64, 64, 3]
        using (var v16 = fp16.Vae.Decode(sample))
        using (var vb = bf16.Vae.Decode(sample))
        {
            outputs.Add(("text encoder", t32.ToArray(), t16.ToArray(), tb.ToArray()));
            outputs.Add(("UNet", u32.ToArray(), u16.ToArray(), ub.ToArray()));
            outputs.Add(("VAE", v32.ToArray(), v16.ToArray(), vb.ToArray()));
        }
        foreach (var (component, exact, half, bfloat) in outputs)
        {
            Assert.Equal(exact, half);
            Assert.NotEqual(exact, bfloat);
            double scale = exact.Max(v => Math.Abs(v));
            Support.Tolerance.AssertClose(exact, bfloat, 0.05 * scale, 0.05, $"bf16 {component} vs fp32");
        }
    }

    [Fact]
    public void Single_file_hash_is_the_web_uis_short_sha256_and_folders_have_none()
    {
        using var single = LoadSingleFile(TestCheckpoints.Sd15SingleFile);
        using var stream = File.OpenRead(TestCheckpoints.Sd15SingleFile);
        string sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
        Assert.Equal(sha256[..10], single.Hash);
        Assert.Equal("tiny-sd15", single.Name);

        using var folder = ModelLoader.Load(TestCheckpoints.MobileFolder);
        Assert.Null(folder.Hash);
        Assert.Equal("tiny-mobile", folder.Name);
        Assert.Equal(ModelFamily.MobileDiffusion, folder.Family.Family);
        Assert.Equal(ModelPrediction.VPrediction, folder.Scheduler.Prediction);
        Assert.True(folder.HasGuidanceEmbedding);
    }

    [Fact]
    public void Complete_checkpoints_load_without_warnings()
    {
        using var single = LoadSingleFile(TestCheckpoints.Sd15SingleFile);
        using var folder = ModelLoader.Load(TestCheckpoints.Sd15Folder);
        Assert.Empty(single.Warnings);
        Assert.Empty(folder.Warnings);
    }

    [Fact]
    public void Unknown_and_unused_single_file_tensors_are_reported_as_warnings()
    {
        using var scratch = new TempFolder();
        string path = scratch.File("extra.safetensors");
        TestCheckpoints.Rewrite(TestCheckpoints.Sd15SingleFile, path, e => e,
            TestCheckpoints.ZerosF16("some_addon.lora_down.weight", 4, 4),
            TestCheckpoints.ZerosF16("cond_stage_model.transformer.text_model.extra_projection.weight", 4, 4));
        using var model = LoadSingleFile(path);
        Assert.Equal(2, model.Warnings.Count);
        Assert.Contains(model.Warnings, w => w.Contains("unrecognised", StringComparison.Ordinal) && w.Contains("some_addon.lora_down.weight", StringComparison.Ordinal));
        Assert.Contains(model.Warnings, w => w.Contains("text encoder tensors were not used", StringComparison.Ordinal) &&
                                             w.Contains("text_model.extra_projection.weight", StringComparison.Ordinal));
    }

    [Fact]
    public void Unused_folder_tensors_are_reported_as_warnings()
    {
        using var scratch = new TempFolder();
        string folder = TestCheckpoints.CopyOfSd15Folder(scratch);
        string unet = Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors");
        TestCheckpoints.Rewrite(Path.Combine(TestCheckpoints.Sd15Folder, "unet", "diffusion_pytorch_model.safetensors"), unet, e => e,
            TestCheckpoints.ZerosF16("down_blocks.0.extra.weight", 2, 2));
        using var model = ModelLoader.Load(folder);
        string warning = Assert.Single(model.Warnings);
        Assert.Contains("1 UNet tensors were not used", warning);
        Assert.Contains("down_blocks.0.extra.weight", warning);
    }

    [Fact]
    public void A_missing_weight_names_its_key_and_file()
    {
        using var scratch = new TempFolder();
        string path = scratch.File("missing.safetensors");
        const string dropped = "model.diffusion_model.out.2.weight";   // conv_out
        TestCheckpoints.Rewrite(TestCheckpoints.Sd15SingleFile, path, e => e.Name == dropped ? null : e);
        var e = Assert.Throws<ModelLoadException>(() => LoadSingleFile(path));
        Assert.Contains("conv_out.weight", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_folder_without_unet_is_not_a_diffusers_model()
    {
        using var scratch = new TempFolder();
        string folder = TestCheckpoints.CopyOfSd15Folder(scratch);
        Directory.Delete(Path.Combine(folder, "unet"), recursive: true);
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(folder));
        Assert.Equal(folder, e.ModelPath);
        Assert.Contains("is not a diffusers model folder: 'unet/' is missing", e.Message);
    }

    [Fact]
    public void A_component_with_only_pickled_bin_weights_is_refused()
    {
        using var scratch = new TempFolder();
        string folder = TestCheckpoints.CopyOfSd15Folder(scratch);
        string vae = Path.Combine(folder, "vae");
        File.Delete(Path.Combine(vae, "diffusion_pytorch_model.safetensors"));
        TestCheckpoints.Pickle(scratch, Path.Combine("tiny-sd15", "vae", "diffusion_pytorch_model.bin"));
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(folder));
        Assert.Contains("diffusion_pytorch_model.bin", e.Message);
        Assert.Contains("pickle", e.Message);
        Assert.Contains("never unpickles", e.Message);
    }

    [Theory]
    [InlineData("model.ckpt")]
    [InlineData("model.safetensors")]   // renamed: recognised by its zip signature
    public void Pickle_checkpoints_are_refused(string name)
    {
        using var scratch = new TempFolder();
        string path = TestCheckpoints.Pickle(scratch, name);
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(path));
        Assert.Contains("pickle", e.Message);
        Assert.Contains("Convert it to safetensors", e.Message);
    }

    [Fact]
    public void Sd2_shaped_single_file_is_recognised_and_refused()
    {
        using var scratch = new TempFolder();
        string path = TestCheckpoints.Sd2Shaped(scratch);
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(path));
        Assert.Contains("Stable Diffusion 2.x", e.Message);
        Assert.Contains("not supported", e.Message);
        Assert.Contains("1024", e.Message);
    }

    [Fact]
    public void Non_standard_single_file_without_configs_asks_for_them()
    {
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(TestCheckpoints.Sd15SingleFile));
        Assert.Contains("not the standard SD 1.x shape", e.Message);
        Assert.Contains("norm_num_groups", e.Message);
        Assert.Contains("--model-config", e.Message);
    }

    [Fact]
    public void Other_safetensors_and_broken_files_name_the_file()
    {
        using var scratch = new TempFolder();
        string bert = TestCheckpoints.NotStableDiffusion(scratch);
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(bert));
        Assert.Contains($"'{bert}' is not a Stable Diffusion 1.x checkpoint", e.Message);
        Assert.Contains("embeddings, encoder", e.Message);

        string truncated = TestCheckpoints.Truncated(scratch);
        e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(truncated));
        Assert.Contains(truncated, e.Message);
        Assert.IsAssignableFrom<SafetensorsFormatException>(e.InnerException);

        string missing = scratch.File("nothing-here.safetensors");
        e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(missing));
        Assert.Contains($"'{missing}' is neither a file nor a folder", e.Message);

        e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(scratch.Path));
        Assert.Contains("is not a diffusers model folder", e.Message);
    }
}
