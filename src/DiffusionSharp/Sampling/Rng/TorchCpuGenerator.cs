namespace DiffusionSharp.Sampling.Rng;

/// <summary>
/// <c>torch.randn</c> on the CPU (ComfyUI's noise, A1111 RNG source "CPU", stable-diffusion.cpp <c>--rng cpu</c>): PyTorch's
/// <c>CPUGeneratorImpl</c> after <c>torch.manual_seed(seed)</c>, an <see cref="Mt19937"/> seeded with the low 32 bits of
/// the seed. Like the torch generator its state carries over from call to call, so the second call gives what a second
/// <c>torch.randn</c> gives (the ancestral noise after the initial latent). Each call reproduces
/// <c>torch.randn(n)</c> of a contiguous float32 tensor with n = <c>destination.Length</c>, which takes one of two paths
/// (<c>aten/src/ATen/native/cpu/DistributionTemplates.h</c>, <c>normal_kernel</c>):
/// <list type="bullet">
/// <item>n &gt;= 16: fill all n with float uniforms <c>(u32 &amp; 0xFFFFFF) * 2^-24</c>, then turn each block of 16 into
/// normals by Box–Muller on pairs (j, j+8): <c>r = sqrt(-2 ln(1 - u_j))</c>, <c>theta = 2π u_{j+8}</c>,
/// <c>out_j = r cos theta</c>, <c>out_{j+8} = r sin theta</c>. If n is not a multiple of 16, the last 16 positions are
/// refilled with 16 new uniforms and transformed again. On x86 with AVX2 (every CPU PyTorch's AVX512 build runs too,
/// since <c>normal_stub</c> is not dispatched to AVX512) the logarithm and sincos are <see cref="AvxMathFun"/>'s
/// polynomials, reproduced here bit for bit. (PyTorch's non-AVX2 builds, e.g. on ARM, use libm there and differ
/// by a few ulps.)</item>
/// <item>n &lt; 16: per element, double-precision Box–Muller with 53-bit uniforms from pairs of draws,
/// <c>r = sqrt(-2 log1p(-u2))</c>, <c>theta = 2π u1</c>: returns <c>r cos theta</c> and keeps <c>r sin theta</c> for the next
/// element, even across calls (PyTorch's <c>next_double_normal_sample</c>).</item>
/// </list>
/// </summary>
public sealed class TorchCpuGenerator : INoiseGenerator
{
    private const float TwoPi = (float)(2 * Math.PI);
    private readonly Mt19937 _engine;
    private double? _cachedNormal;

    public TorchCpuGenerator(ulong seed) => _engine = new Mt19937(seed);

    public void NextNormal(Span<float> destination)
    {
        if (destination.Length >= 16)
            FillTensorPath(destination);
        else
            for (int i = 0; i < destination.Length; i++)
                destination[i] = (float)NextDoubleNormal();
    }

    private void FillTensorPath(Span<float> data)
    {
        int n = data.Length;
        for (int i = 0; i < n; i++)
            data[i] = NextFloatUniform();
        for (int i = 0; i + 16 <= n; i += 16)
            NormalFill16(data.Slice(i, 16));
        if (n % 16 != 0)
        {
            var tail = data[^16..]; // recompute the last 16 values from 16 fresh uniforms
            for (int i = 0; i < 16; i++)
                tail[i] = NextFloatUniform();
            NormalFill16(tail);
        }
    }

    /// <summary><c>normal_fill_16_AVX2</c> with mean 0 and std 1.</summary>
    private static void NormalFill16(Span<float> data)
    {
        for (int j = 0; j < 8; j++)
        {
            float u1 = 1f - data[j]; // [0, 1) -> (0, 1] for the logarithm
            float u2 = data[j + 8];
            float radius = MathF.Sqrt(-2f * AvxMathFun.Log(u1));
            float theta = TwoPi * u2;
            AvxMathFun.SinCos(theta, out float sin, out float cos);
            // _mm256_fmadd_ps(n, std, mean) with std 1 and mean 0: n itself, except that -0 becomes +0.
            data[j] = MathF.FusedMultiplyAdd(radius * cos, 1f, 0f);
            data[j + 8] = MathF.FusedMultiplyAdd(radius * sin, 1f, 0f);
        }
    }

    /// <summary><c>at::normal_distribution&lt;double&gt;</c> with the generator's cached second value.</summary>
    private double NextDoubleNormal()
    {
        if (_cachedNormal is double cached)
        {
            _cachedNormal = null;
            return cached;
        }
        double u1 = NextDoubleUniform();
        double u2 = NextDoubleUniform();
        double r = Math.Sqrt(-2.0 * Log1P(-u2));
        double theta = 2.0 * Math.PI * u1;
        _cachedNormal = r * Math.Sin(theta);
        return r * Math.Cos(theta);
    }

    /// <summary><c>uniform_real_distribution&lt;float&gt;(0, 1)</c>: 24 random bits.</summary>
    private float NextFloatUniform() => (_engine.NextUInt32() & 0xFFFFFF) * (1f / (1 << 24));

    /// <summary><c>uniform_real_distribution&lt;double&gt;(0, 1)</c>: 53 random bits of <c>random64()</c>.</summary>
    private double NextDoubleUniform() => (_engine.NextUInt64() & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    /// <summary>log(1 + x) accurate for small x (Goldberg's rearrangement); .NET has no log1p.</summary>
    private static double Log1P(double x)
    {
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }
}
