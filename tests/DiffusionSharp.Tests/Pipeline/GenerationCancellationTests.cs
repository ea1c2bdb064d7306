using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Tests.Pipeline;

/// <summary>
/// A token cancelled from the progress callback ends <see cref="TextToImagePipeline.Generate"/> with
/// <see cref="OperationCanceledException"/> and no result (so the CLI, which writes after Generate returns, writes
/// nothing), wherever the cancellation lands; the work after it does not run.
/// </summary>
public class GenerationCancellationTests(TinyPipelineModels models) : IClassFixture<TinyPipelineModels>
{
    /// <summary>Records every report and cancels at the first one <c>when</c> accepts.</summary>
    private sealed class CancelWhen(CancellationTokenSource source, Func<GenerationProgress, bool> when) : IProgress<GenerationProgress>
    {
        public List<GenerationProgress> Reports { get; } = [];

        public int CancelledAt { get; private set; } = -1;

        public void Report(GenerationProgress value)
        {
            Reports.Add(value);
            if (CancelledAt < 0 && when(value))
            {
                CancelledAt = Reports.Count - 1;
                source.Cancel();
            }
        }
    }

    private static readonly GenerationRequest Request = new()
    {
        Prompt = "a photo of a cat",
        Width = 16,
        Height = 16,
        Steps = 3,
        Sampler = "euler_a",
        Rng = RngType.Cpu,
        BatchCount = 2,
    };

    public static TheoryData<string> Points() => ["encoding", "first step", "last step", "first decode", "second image's last step"];

    private static bool At(string point, GenerationProgress p) => point switch
    {
        "encoding" => p.Stage == GenerationStage.EncodingText,
        "first step" => p is { Stage: GenerationStage.Denoising, Image: 0, Step: 1 },
        "last step" => p is { Stage: GenerationStage.Denoising, Image: 0, Step: 3 },
        "first decode" => p is { Stage: GenerationStage.Decoding, Image: 0 },
        "second image's last step" => p is { Stage: GenerationStage.Denoising, Image: 1, Step: 3 },
        _ => throw new ArgumentOutOfRangeException(nameof(point), point, "not a cancellation point"),
    };

    [Theory]
    [MemberData(nameof(Points))]
    public void Cancelling_from_the_progress_callback_throws_and_stops_the_work(string point)
    {
        using var source = new CancellationTokenSource();
        var progress = new CancelWhen(source, p => At(point, p));
        var pipeline = new TextToImagePipeline(models.Mobile);
        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Generate(Request, progress, source.Token));

        Assert.True(progress.CancelledAt >= 0, $"no report matched '{point}'");
        var cancelled = progress.Reports[progress.CancelledAt];
        var after = progress.Reports.Skip(progress.CancelledAt + 1).ToList();
        // The stage under way may finish (a decode already started, say); nothing after it starts.
        Assert.DoesNotContain(after, p => p.Stage == GenerationStage.Done);
        Assert.DoesNotContain(after, p => p.Image > cancelled.Image);
        Assert.DoesNotContain(after, p => p.Stage == GenerationStage.Denoising);
        if (cancelled.Stage != GenerationStage.Decoding)
            Assert.DoesNotContain(after, p => p.Stage == GenerationStage.Decoding);
    }

    [Fact]
    public void An_already_cancelled_token_runs_nothing()
    {
        var progress = new CancelWhen(new CancellationTokenSource(), _ => false);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            new TextToImagePipeline(models.Mobile).Generate(Request, progress, new CancellationToken(canceled: true)));
        Assert.DoesNotContain(progress.Reports, p => p.Stage != GenerationStage.EncodingText);
    }

    [Fact]
    public void Without_cancellation_every_stage_is_reported_in_order()
    {
        var progress = new CancelWhen(new CancellationTokenSource(), _ => false);
        var result = new TextToImagePipeline(models.Mobile).Generate(Request, progress);
        Assert.Equal(2, result.Images.Count);
        string Describe(GenerationProgress p) => $"{p.Stage} {p.Image} {p.Step}/{p.Steps}";
        Assert.Equal(
        [
            "EncodingText 0 0/3",
            "Denoising 0 1/3", "Denoising 0 2/3", "Denoising 0 3/3", "Decoding 0 3/3",
            "Denoising 1 1/3", "Denoising 1 2/3", "Denoising 1 3/3", "Decoding 1 3/3",
            "Done 1 3/3",
        ], progress.Reports.Select(Describe));
    }
}
