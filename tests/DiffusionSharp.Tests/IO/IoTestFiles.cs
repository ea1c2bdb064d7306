namespace DiffusionSharp.Tests.IO;

/// <summary>Paths of the committed IO fixtures (written by tools/make_io_fixtures.py) and throwaway folders.</summary>
internal static class IoTestFiles
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "io", name);

    /// <summary>Iterations for the fuzz tests: DIFFUSIONSHARP_FUZZ_ITERATIONS overrides the default for longer local runs.</summary>
    public static int FuzzIterations(int defaultCount) =>
        int.TryParse(Environment.GetEnvironmentVariable("DIFFUSIONSHARP_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : defaultCount;
}

/// <summary>A fresh folder under the system temp folder, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "diffusionsharp-io-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes <paramref name="bytes"/> to a file named <paramref name="name"/> and returns its path.</summary>
    public string Write(string name, byte[] bytes)
    {
        string path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
