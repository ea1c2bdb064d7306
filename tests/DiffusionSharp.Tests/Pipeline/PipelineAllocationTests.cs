using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Models.Unet;

namespace DiffusionSharp.Tests.Pipeline;

/// <summary>
/// The whole denoising step of <see cref="TextToImagePipeline"/> — sampler, CFG, the pipeline's model function and the
/// UNet — allocates 0 managed bytes (all threads, precise) once the first steps have sized the buffers: measured
/// between the progress reports of consecutive steps, with every sampler, with two-pass CFG (tiny-sd15) and with the
/// guidance embedding (tiny-mobile).
/// </summary>
[Collection(AllocationCollection.Name)]
public class PipelineAllocationTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    private const int Steps = 10;

    /// <summary>The process's allocated bytes at the end of each denoising step of the first image.</summary>
    private sealed class StepBytes : IProgress<GenerationProgress>
    {
        public long[] AfterStep { get; } = new long[Steps + 1];

        public void Report(GenerationProgress value)
        {
            if (value is { Stage: GenerationStage.Denoising, Image: 0, Step: > 0 })
                AfterStep[value.Step] = GC.GetTotalAllocatedBytes(precise: true);
        }
    }

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (string model in new[] { TinyModelFixtures.Sd15, TinyModelFixtures.Mobile })
            foreach (var sampler in SamplerRegistry.All)
                data.Add(model, sampler.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_warm_denoising_step_allocates_nothing(string model, string sampler)
    {
        var request = new GenerationRequest { Prompt = "a photo of a cat", Width = 16, Height = 16, Steps = Steps, Sampler = sampler, Rng = RngType.Cpu, CfgScale = 3 };
        var bytes = new StepBytes();
        new TextToImagePipeline(models[model]).Generate(request, bytes);
        long fewest = long.MaxValue;
        for (int step = 3; step <= Steps; step++) fewest = Math.Min(fewest, bytes.AfterStep[step] - bytes.AfterStep[step - 1]);
        Assert.True(bytes.AfterStep[1] > 0);
        Assert.Equal(0, fewest);
    }
}
