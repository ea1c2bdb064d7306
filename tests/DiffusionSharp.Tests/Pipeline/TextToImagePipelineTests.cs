using DiffusionSharp.IO.Png;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Pipeline;

/// <summary>
/// The whole text-to-image path — tokenizer, text encoder, seeded CPU noise, sampler with guidance over the UNet, VAE,
/// PNG — against complete runs computed in float64 by PyTorch (tools/fixtures/make_pipeline_fixtures.py) for every
/// sampler: at 1 and 2 steps on its default spacing and at 3 on karras, tiny-sd15 with classifier-free guidance
/// (two passes) and tiny-mobile with its guidance embedding (one pass, v-prediction).
/// </summary>
public class TextToImagePipelineTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    // Latents: the engine computes in float32 what the reference computes in float64. The error is absolute on the
    // scale of the whole latent, not of each element: denoised = x - sigma * (uncond + 7 (cond - uncond)) cancels
    // terms of |x| ~ 40 at sigma 14.6 down to values near 0. Measured worst |diff| / max|expected|: 1.0e-5 (tiny-sd15
    // heun, 4.0e-4 at max 39), 3.2e-6 (tiny-sd15 1-step runs), 1.2e-6 (tiny-mobile); the bound leaves 5x.
    private const double LatentAtolPerMaxAbs = 5e-5;

    /// <summary>The runs of each fixture: every sampler at 1 and 2 steps on its default spacing (ddim's ddim_uniform
    /// refuses 1 step), the k-diffusion samplers also at 3 steps on karras.</summary>
    public static TheoryData<string, string, string, int> Runs()
    {
        (string Sampler, string Spacing, bool Karras)[] samplers =
        [
            ("euler", "discrete", true), ("euler_a", "discrete", true), ("heun", "discrete", true), ("dpm2", "discrete", true),
            ("dpm++2m", "discrete", true), ("dpm++2s_a", "discrete", true), ("ddim", "ddim_uniform", false),
            ("ddim_trailing", "simple", false), ("lcm", "lcm", false),
        ];
        var data = new TheoryData<string, string, string, int>();
        foreach (string model in new[] { TinyModelFixtures.Sd15, TinyModelFixtures.Mobile })
        {
            foreach (var (sampler, spacing, karras) in samplers)
            {
                if (spacing != "ddim_uniform") data.Add(model, sampler, spacing, 1);
                data.Add(model, sampler, spacing, 2);
                if (karras) data.Add(model, sampler, "karras", 3);
            }
        }
        return data;
    }

    private static GenerationRequest Request(PipelineFixture fixture, string sampler, string scheduler, int steps) => new()
    {
        Prompt = fixture.Prompt,
        NegativePrompt = fixture.NegativePrompt,
        Width = fixture.Width,
        Height = fixture.Height,
        Steps = steps,
        CfgScale = fixture.CfgScale,
        Sampler = sampler,
        Scheduler = scheduler,
        Seed = fixture.Seed,
        Rng = RngType.Cpu,
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void Final_latent_and_png_match_the_pytorch_run(string model, string sampler, string scheduler, int steps)
    {
        using var fixture = new PipelineFixture(model);
        string run = PipelineFixture.Case(sampler, scheduler, steps);
        var result = new TextToImagePipeline(models[model]).Generate(Request(fixture, sampler, scheduler, steps));
        var image = Assert.Single(result.Images);

        Assert.Equal(fixture.ModelCalls(run), image.Timings.UnetEvaluations);
        Assert.Equal([1, image.Latent.Channels, image.Latent.Height, image.Latent.Width], fixture.Shape(run + ".latent"));
        float[] expected = fixture.Values(run + ".latent");
        double atol = LatentAtolPerMaxAbs * expected.Max(Math.Abs);
        Tolerance.AssertClose(expected, Nchw(image.Latent), atol, 0, $"{model} {run} final latent");

        // The PNG as written and read back; 1-step runs all end on the same latent, whose image is stored once.
        string imageName = steps == 1 ? PipelineFixture.Case("euler", "discrete", 1) + ".image" : run + ".image";
        Assert.True(fixture.Contains(imageName), $"{model}: the fixture has no {imageName}");
        var png = WriteAndRead(image.Image, image.Parameters);
        AssertPixelsWithinOneLevel(fixture.Values(imageName), fixture.Shape(imageName), png, $"{model} {run}");
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Prompt_ids_and_initial_noise_are_the_fixtures_inputs(string model)
    {
        using var fixture = new PipelineFixture(model);
        var tokenizer = models[model].Tokenizer;
        Assert.Equal(fixture.InputIds(0), tokenizer.Tokenize(fixture.NegativePrompt, 77).InputIds);
        Assert.Equal(fixture.InputIds(1), tokenizer.Tokenize(fixture.Prompt, 77).InputIds);

        int[] shape = fixture.Shape("initial_noise");   // [1, C, h, w]
        var noise = new ChannelsLastNoise(RngTypes.Create(RngType.Cpu, (ulong)fixture.Seed), shape[1], shape[2], shape[3]);
        var drawn = new float[shape[1] * shape[2] * shape[3]];
        noise.NextNormal(drawn);                        // [h, w, C]
        var latent = new GeneratedLatent(shape[2], shape[3], shape[1], drawn);
        Assert.Equal(fixture.Values("initial_noise"), Nchw(latent));
    }

    /// <summary>The same request twice, and with another thread count, gives bitwise the same latent and pixels.</summary>
    [Fact]
    public void Runs_are_bitwise_repeatable()
    {
        using var fixture = new PipelineFixture(TinyModelFixtures.Sd15);
        var pipeline = new TextToImagePipeline(models.Sd15);
        var request = Request(fixture, "dpm++2s_a", "karras", 3);
        var first = pipeline.Generate(request).Images[0];
        GeneratedImage second;
        using (var scheduler = new DiffusionSharp.Threading.ThreadScheduler(1))
        using (scheduler.Use())
            second = pipeline.Generate(request).Images[0];
        Assert.Equal(first.Latent.Values, second.Latent.Values);
        Assert.Equal(first.Image.Pixels, second.Image.Pixels);
        Assert.Equal(first.Parameters, second.Parameters);
    }

    /// <summary>Image k of a batch is the single run with seed + k (the web UIs' rule), and each result says its seed.</summary>
    [Fact]
    public void Batch_image_k_equals_a_single_run_with_seed_plus_k()
    {
        using var fixture = new PipelineFixture(TinyModelFixtures.Mobile);
        var pipeline = new TextToImagePipeline(models.Mobile);
        var request = Request(fixture, "euler_a", "discrete", 2) with { Seed = 7, BatchCount = 3 };
        var batch = pipeline.Generate(request).Images;
        Assert.Equal([7L, 8L, 9L], batch.Select(i => i.Seed));
        for (int k = 0; k < 3; k++)
        {
            var single = Assert.Single(pipeline.Generate(request with { Seed = 7 + k, BatchCount = 1 }).Images);
            Assert.Equal(single.Latent.Values, batch[k].Latent.Values);
            Assert.Equal(single.Image.Pixels, batch[k].Image.Pixels);
            Assert.Equal(single.Parameters, batch[k].Parameters);
        }
        Assert.NotEqual(batch[0].Image.Pixels, batch[1].Image.Pixels);
    }

    private static PngImage WriteAndRead(RgbImage image, string parameters)
    {
        using var stream = new MemoryStream();
        PngWriter.Write(stream, image, [new(Infotext.ChunkKeyword, parameters)]);
        stream.Position = 0;
        var png = PngReader.Read(stream);
        Assert.Equal(parameters, png.Text[Infotext.ChunkKeyword]);
        return png;
    }

    /// <summary>
    /// Each PNG byte against the reference's float pixel converted as the pipeline documents: (x + 1) / 2 clamped to
    /// [0, 1], times 255, truncated. A reference value within float32 error of a level boundary may land one level off.
    /// </summary>
    private static void AssertPixelsWithinOneLevel(float[] reference, int[] nchw, PngImage png, string what)
    {
        int height = nchw[2], width = nchw[3];
        Assert.Equal((width, height, 3), (png.Width, png.Height, png.Channels));
        int worst = 0, worstIndex = -1;
        for (int c = 0; c < 3; c++)
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            double v = (reference[(c * height + y) * width + x] + 1.0) / 2.0;
            int expected = (int)(Math.Clamp(v, 0.0, 1.0) * 255.0);
            int index = (y * width + x) * 3 + c;
            int diff = Math.Abs(png.Pixels[index] - expected);
            if (diff > worst) (worst, worstIndex) = (diff, index);
        }
        Assert.True(worst <= 1, $"{what}: pixel byte {worstIndex} is {worst} levels from the reference's");
    }

    /// <summary>A channels-last latent as PyTorch's [1, C, h, w] order.</summary>
    private static float[] Nchw(GeneratedLatent latent)
    {
        var values = new float[latent.Values.Length];
        int i = 0;
        for (int c = 0; c < latent.Channels; c++)
        for (int y = 0; y < latent.Height; y++)
        for (int x = 0; x < latent.Width; x++)
            values[i++] = latent[c, y, x];
        return values;
    }
}
