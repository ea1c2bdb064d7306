using DiffusionSharp.Caching;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Pipeline;

/// <summary>
/// One generated picture with the seed that made it, its AUTOMATIC1111-style parameters text, and the final latent the
/// VAE decoded it from; with block caching, what the cache did (<paramref name="Cache"/>).
/// </summary>
public sealed record GeneratedImage(RgbImage Image, long Seed, string Parameters, GenerationTimings Timings, GeneratedLatent Latent,
    CacheStatistics? Cache = null);

/// <summary>Where the time of one image went.</summary>
public sealed record GenerationTimings(TimeSpan TextEncoding, TimeSpan Denoising, TimeSpan Decoding, int UnetEvaluations);
