using DiffusionSharp.Caching;

namespace DiffusionSharp.Pipeline;

public enum GenerationStage
{
    EncodingText,
    Denoising,
    Decoding,
    Done,
}

/// <summary>Progress of one image of a request: which stage, for denoising the step reached, and with block caching
/// what the cache has done so far in this image.</summary>
public readonly record struct GenerationProgress(
    int Image, int ImageCount, GenerationStage Stage, int Step, int Steps, TimeSpan Elapsed, CacheStatistics? Cache = null);
