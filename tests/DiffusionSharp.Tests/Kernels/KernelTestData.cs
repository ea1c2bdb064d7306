using DiffusionSharp.Kernels;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>Inputs and checks shared by the kernel tests.</summary>
internal static class KernelTestData
{
    /// <summary>Every instruction-set path this machine can run (the fast kernels are tested on each).</summary>
    public static IEnumerable<KernelIsa> SupportedIsas => Enum.GetValues<KernelIsa>().Where(KernelSettings.IsSupported);

    public static TheoryData<KernelIsa> IsaData
    {
        get
        {
            var data = new TheoryData<KernelIsa>();
            foreach (var isa in SupportedIsas) data.Add(isa);
            return data;
        }
    }

    /// <summary>Sizes that hit every vector-width tail: 1..17, around 32 and 48, and a few odd larger ones.</summary>
    public static readonly int[] TailSizes = [1, 2, 3, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 31, 33, 47, 49];

    public static float[] Uniform(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static GuardedBuffer GuardedUniform(int n, int seed, float scale = 1f) => GuardedBuffer.From(Uniform(n, seed, scale));

    /// <summary>
    /// Plants special values at random positions: NaN, ±infinity, ±0 and ±the smallest subnormal. (No huge finite
    /// values: their products overflow in float but not in the double references, which is a precision difference,
    /// not a propagation one.)
    /// </summary>
    public static void PlantSpecials(Span<float> x, int seed, int count)
    {
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, float.Epsilon, -float.Epsilon];
        var rng = new Random(seed);
        for (int i = 0; i < count; i++) x[rng.Next(x.Length)] = specials[i % specials.Length];
    }

    /// <summary>
    /// Non-finite results must match exactly in kind (NaN with NaN, +inf with +inf); finite ones within tolerance.
    /// </summary>
    public static void AssertSameSpecials(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var e = expected.ToArray();
        var a = actual.ToArray();
        for (int i = 0; i < e.Length; i++)
        {
            if (float.IsFinite(e[i]) && float.IsFinite(a[i])) continue;
            bool same = (float.IsNaN(e[i]) && float.IsNaN(a[i])) || e[i] == a[i];
            if (!same) throw new Xunit.Sdk.XunitException($"{what}: element {i} expected {e[i]}, got {a[i]}.");
            e[i] = a[i] = 0f;
        }
        Tolerance.AssertClose(e, a, atol, rtol, what);
    }

    public static void AssertBitwiseEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                throw new Xunit.Sdk.XunitException($"{what}: element {i} differs: {expected[i]:R} vs {actual[i]:R}.");
    }
}
