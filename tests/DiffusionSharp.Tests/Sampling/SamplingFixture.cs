using System.Text.Json;

namespace DiffusionSharp.Tests.Sampling;

/// <summary>Reads the JSON fixtures that tools/fixtures/sampling_*.py write into tests/fixtures/sampling/.</summary>
internal static class SamplingFixture
{
    private static readonly Dictionary<string, JsonElement> Cache = [];

    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "sampling", name);

    public static JsonElement Load(string name)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(name, out var root)) return root;
            string path = PathOf(name);
            if (!File.Exists(path))
                throw new FileNotFoundException($"Fixture {path} is missing: regenerate it with the matching tools/fixtures/sampling_*.py script.", path);
            root = JsonDocument.Parse(File.ReadAllBytes(path)).RootElement;
            Cache[name] = root;
            return root;
        }
    }

    public static double[] Doubles(this JsonElement array) => array.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    public static float[] Floats(this JsonElement array) => array.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();

    public static int[] Ints(this JsonElement array) => array.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    public static double[][] DoubleRows(this JsonElement array) => array.EnumerateArray().Select(Doubles).ToArray();

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double atol, double rtol, string what)
    {
        if (expected.Length != actual.Length)
            throw new Xunit.Sdk.XunitException($"{what}: expected {expected.Length} values, got {actual.Length}.");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (!(double.IsFinite(a) && Math.Abs(a - e) <= atol + rtol * Math.Abs(e)))
                throw new Xunit.Sdk.XunitException($"{what}: [{i}] expected {e:R}, got {a:R} (atol {atol:G3}, rtol {rtol:G3}).");
        }
    }
}
