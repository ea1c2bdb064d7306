namespace DiffusionSharp.Diagnostics;

/// <summary>Reads small Linux <c>/proc</c> files; null where the file does not exist or cannot be read (other systems, sandboxes).</summary>
internal static class ProcFile
{
    public static string? TryRead(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
