using DiffusionSharp.Kernels.Quant;

namespace DiffusionSharp.Tests.Kernels.Quant;

/// <summary>Random quantized matrices and the paths the tests sweep.</summary>
internal static class QuantTestData
{
    public static IEnumerable<IntegerGemmPath> Paths(int bits) => Enum.GetValues<IntegerGemmPath>().Where(p => IntegerGemm.IsSupported(p, bits));

    public static TheoryData<IntegerGemmPath> Int4Paths => Data(4);
    public static TheoryData<IntegerGemmPath> Int8Paths => Data(8);

    /// <summary>Every supported 4-bit path, with symmetric and with asymmetric activations.</summary>
    public static TheoryData<IntegerGemmPath, bool> Int4PathsBothActivations
    {
        get
        {
            var data = new TheoryData<IntegerGemmPath, bool>();
            foreach (var path in Paths(4)) { data.Add(path, false); data.Add(path, true); }
            return data;
        }
    }

    private static TheoryData<IntegerGemmPath> Data(int bits)
    {
        var data = new TheoryData<IntegerGemmPath>();
        foreach (var p in Paths(bits)) data.Add(p);
        return data;
    }

    /// <summary>Codes uniform in [-8, 7], scales in [0.01, 0.03), λ in [0.5, 2) (or none), factors in [-0.2, 0.2); symmetric or asymmetric activations.</summary>
    public static IntegerMatrix RandomW4A4(int n, int k, int group, int rank, bool smooth, int seed, bool asymmetric = false)
    {
        var rng = new Random(seed);
        var codes = new sbyte[n * k];
        for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)rng.Next(-8, 8);
        int groups = (k + group - 1) / group;
        var scales = Floats(rng, n * groups, 0.01f, 0.03f);
        var lambda = smooth ? Floats(rng, k, 0.5f, 2f) : [];
        return IntegerMatrix.W4A4(n, k, group, codes, scales, lambda, rank, Floats(rng, k * rank, -0.2f, 0.2f), Floats(rng, n * rank, -0.2f, 0.2f), asymmetric);
    }

    public static IntegerMatrix RandomW8A8(int n, int k, int seed)
    {
        var rng = new Random(seed);
        var codes = new sbyte[n * k];
        for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)rng.Next(-127, 128);
        return IntegerMatrix.W8A8(n, k, codes, Floats(rng, n, 1e-4f, 3e-4f));
    }

    public static float[] Floats(Random rng, int count, float lo, float hi)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = lo + (float)rng.NextDouble() * (hi - lo);
        return a;
    }
}
