using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Pipeline;

/// <summary>One generated picture with the seed that made it and its AUTOMATIC1111-style parameters text.</summary>
public sealed record GeneratedImage(RgbImage Image, long Seed, string Parameters, GenerationTimings Timings);

/// <summary>Where the time of one image went.</summary>
public sealed record GenerationTimings(TimeSpan TextEncoding, TimeSpan Denoising, TimeSpan Decoding, int UnetEvaluations);
