namespace DiffusionSharp.Cli;

/// <summary>
/// The model that ships with DiffusionSharp, used when no <c>-m</c> is given: copied beside the executable at build
/// time from the repository's <c>models/</c> folder.
/// </summary>
public static class DefaultModel
{
    public const string FolderName = "emoji-mobile";

    public static string Path => System.IO.Path.Combine(AppContext.BaseDirectory, "models", FolderName);
}
