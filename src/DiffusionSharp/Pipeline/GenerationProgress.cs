namespace DiffusionSharp.Pipeline;

public enum GenerationStage
{
    EncodingText,
    Denoising,
    Decoding,
    Done,
}

/// <summary>Progress of one image of a request: which stage, and for denoising the step reached.</summary>
public readonly record struct GenerationProgress(
    int Image, int ImageCount, GenerationStage Stage, int Step, int Steps, TimeSpan Elapsed);
