namespace DiffusionSharp.Caching;

/// <summary>
/// The prompt set <c>--cache auto</c> profiles with: a few subjects of the shipped emoji model's kind and a few of a
/// general model's. Block change curves hardly depend on the prompt (the paper's observation, and docs/CACHING.md's
/// measurement), so a short, fixed set is enough; prompt i uses seed i.
/// </summary>
public static class BuiltInPrompts
{
    public static IReadOnlyList<string> All { get; } =
    [
        "a red apple on a blue background",
        "grinning face on a yellow background",
        "rocket on a black background",
        "slice of pizza on a green background",
        "a photograph of a mountain lake at sunrise",
        "a portrait of an old man with a beard, oil painting",
        "a city street at night in the rain",
        "a bowl of fruit on a wooden table",
    ];
}
