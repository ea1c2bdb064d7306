using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Pipeline;

/// <summary>
/// One generated picture with the seed that made it, its AUTOMATIC1111-style parameters text, and the final latent the
/// VAE decoded it from.
/// </summary>
public sealed record GeneratedImage(RgbImage Image, long Seed, string Parameters, GenerationTimings Timings, GeneratedLatent Latent);

/// <summary>Where the time of one image went.</summary>
public sealed record GenerationTimings(TimeSpan TextEncoding, TimeSpan Denoising, TimeSpan Decoding, int UnetEvaluations);
