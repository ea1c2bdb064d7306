namespace DiffusionSharp.Pipeline;

/// <summary>The images of a request, and what the user should hear about it (a truncated prompt, say).</summary>
public sealed record GenerationResult(IReadOnlyList<GeneratedImage> Images, IReadOnlyList<string> Warnings, ResolvedSettings Settings);
