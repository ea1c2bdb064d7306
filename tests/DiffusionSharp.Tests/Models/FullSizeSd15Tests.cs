using System.Diagnostics;
using DiffusionSharp.Models.Clip;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Models.Vae;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using Xunit.Abstractions;

namespace DiffusionSharp.Tests.Models;

/// <summary>Runs only when DIFFUSIONSHARP_SD15_RANDOM names a diffusers folder written by
/// <c>tools/make_sd15_random.py OUT --layout diffusers</c> (2 GB, never committed): the slow full-size checks.</summary>
public sealed class FullSizeSd15FactAttribute : FactAttribute
{
    public const string Variable = "DIFFUSIONSHARP_SD15_RANDOM";

    public FullSizeSd15FactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable)))
            Skip = $"set {Variable} to a full-size random SD 1.5 diffusers folder (tools/make_sd15_random.py) to run";
    }
}

/// <summary>
/// Full-size Stable Diffusion 1.5 with random weights, through the SD 1.5 presets: the published parameter counts,
/// the FLOP count PyTorch reports for the same architecture, and one CFG-sized (batch 2) 512x512 UNet step inside
/// the memory budget.
/// </summary>
public class FullSizeSd15Tests(ITestOutputHelper output)
{
    private static string Folder => Environment.GetEnvironmentVariable(FullSizeSd15FactAttribute.Variable)!;

    private static string Weights(string component)
        => Path.Combine(Folder, component, component == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors");

    [FullSizeSd15Fact]
    public void Sd15_models_have_the_published_sizes_and_a_batch_2_step_at_512_fits_in_24_GB()
    {
        var clock = Stopwatch.StartNew();
        using var unetWeights = SafetensorsWeightSource.Open(Weights("unet"));
        using var unet = Unet2DConditionModel.Load(new WeightScope(unetWeights), UnetConfig.Sd15);
        output.WriteLine($"UNet loaded in {clock.Elapsed.TotalSeconds:F1} s");
        // diffusers reports 859,520,964 parameters for the SD 1.5 UNet; FLOPs counted by PyTorch forward hooks on the
        // reference modules (meta device, batch 1, 64x64 latent, 77 tokens): 803,273,441,280.
        Assert.Equal(859_520_964L, unet.ParameterCount);
        Assert.Equal(803_273_441_280L, unet.FlopsPerForward(64, 64));

        var random = new Random(1);
        using var sample = new Tensor(2, 64, 64, 4); // [2, 64, 64, 4]
        foreach (ref float v in sample.Span) v = (float)(random.NextDouble() * 2 - 1);
        using var context = new Tensor(2, 77, 768); // [2, 77, 768]
        foreach (ref float v in context.Span) v = (float)(random.NextDouble() * 2 - 1);
        clock.Restart();
        using var noise = unet.Forward(sample, [999f, 999f], context); // [2, 64, 64, 4]
        output.WriteLine($"UNet batch-2 step at 64x64 in {clock.Elapsed.TotalSeconds:F1} s (under load; not a benchmark)");
        Assert.Equal([2, 64, 64, 4], noise.Shape);
        Assert.All(noise.ToArray(), v => Assert.True(float.IsFinite(v)));

        using var textWeights = SafetensorsWeightSource.Open(Weights("text_encoder"));
        using var text = ClipTextModel.Load(new WeightScope(textWeights), ClipTextConfig.Sd15);
        Assert.Equal(123_060_480L, text.ParameterCount);
        var ids = new int[2 * 77];
        ids.AsSpan().Fill(49407);
        ids[0] = ids[77] = 49406;
        using var hidden = text.Forward(ids, 2); // [2, 77, 768]
        Assert.All(hidden.ToArray(), v => Assert.True(float.IsFinite(v)));

        using var vaeWeights = SafetensorsWeightSource.Open(Weights("vae"));
        using var vae = AutoencoderKL.Load(new WeightScope(vaeWeights), VaeConfig.Sd15);
        Assert.Equal(83_653_863L, vae.ParameterCount);
        using var latents = new Tensor(1, 16, 16, 4); // [1, 16, 16, 4]
        using var image = vae.Decode(latents); // [1, 128, 128, 3]
        Assert.Equal([1, 128, 128, 3], image.Shape);

        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        output.WriteLine($"peak working set {peak / (1 << 20)} MiB");
        Assert.True(peak < 24L << 30, $"Peak working set {peak >> 20} MiB exceeds 24 GiB.");
    }
}
