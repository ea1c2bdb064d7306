namespace DiffusionSharp.Sampling.Rng;

/// <summary>
/// <c>torch.randn(..., device="cuda")</c> on the CPU: PyTorch's CUDA normal kernel is curand's Philox4x32-10 with one
/// thread per element. This is the port in A1111's <c>modules/rng_philox.py</c> (RNG source "NV"), also
/// stable-diffusion.cpp's <c>--rng cuda</c> (its default), so a seed gives the noise that A1111's default "GPU" source
/// gives on NVIDIA cards.
/// <para>
/// Element i of the k-th call after seeding (k = <see cref="Offset"/>) is Philox4x32-10 of the counter
/// <c>(k, 0, i, 0)</c> under the key <c>(seed &amp; 0xFFFFFFFF, seed &gt;&gt; 32)</c>, through curand's Box–Muller on the
/// first two output words (the other two are dropped): <c>u = g0 * 2^-32 + 2^-33</c>,
/// <c>v = g1 * (2π 2^-32) + (π 2^-32)</c>, both in float32 as curand forms them, and
/// <c>sqrt(-2 ln u) * sin v</c>, evaluated in double and rounded once.
/// </para>
/// <para>
/// Against real CUDA <c>torch.randn</c> (torch 2.11 on an H100, <c>tests/fixtures/sampling/cuda_randn.json</c>) the values
/// agree to 2.3e-6 absolute, about 19% of them bit for bit: the GPU takes the sine with the fast <c>__sincosf</c>
/// intrinsic, which cannot be reproduced exactly here. A1111's NumPy port (all in float64) is off by up to 4.4e-6.
/// The one-thread-per-element layout holds while the tensor has at most as many elements as the GPU has resident
/// threads (SMs x threads per SM: 270,336 on an H100, 196,608 on an RTX 4090), far above one SD latent (16,384 at
/// 512 px); beyond that PyTorch hands each thread several elements and the GPU's values differ from these.
/// </para>
/// </summary>
public sealed class PhiloxGenerator : INoiseGenerator
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9, W1 = 0xBB67AE85;
    private const float TwoPow32Inv = 2.3283064e-10f;               // CURAND_2POW32_INV, exactly 2^-32
    private const float TwoPow32Inv2Pi = 2.3283064e-10f * 6.2831855f; // CURAND_2POW32_INV_2PI

    public PhiloxGenerator(ulong seed) => Seed = seed;

    public ulong Seed { get; }

    /// <summary>The number of <see cref="NextNormal"/> calls since seeding: the Philox counter's first word.</summary>
    public uint Offset { get; private set; }

    public void NextNormal(Span<float> destination)
    {
        uint key0 = (uint)Seed, key1 = (uint)(Seed >> 32);
        for (int i = 0; i < destination.Length; i++)
        {
            var (g0, g1) = Philox4x32x10(Offset, (uint)i, key0, key1);
            destination[i] = BoxMullerSin(g0, g1);
        }
        Offset++;
    }

    /// <summary>The first two words of Philox4x32-10 on the counter <c>(c0, 0, c2, 0)</c>.</summary>
    private static (uint, uint) Philox4x32x10(uint c0, uint c2, uint k0, uint k1)
    {
        uint c1 = 0, c3 = 0;
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)c0 * M0, p1 = (ulong)c2 * M1;
            c0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            c1 = (uint)p1;
            c2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            c3 = (uint)p0;
            k0 += W0; // the key bump after the 10th round is never used
            k1 += W1;
        }
        return (c0, c1);
    }

    /// <summary>curand <c>_curand_box_muller</c>'s first output, <c>s * sin(v)</c>; nvcc fuses the multiply-adds forming u and v.</summary>
    private static float BoxMullerSin(uint x, uint y)
    {
        float u = MathF.FusedMultiplyAdd(x, TwoPow32Inv, TwoPow32Inv / 2);
        float v = MathF.FusedMultiplyAdd(y, TwoPow32Inv2Pi, TwoPow32Inv2Pi / 2);
        return (float)(Math.Sqrt(-2.0 * Math.Log(u)) * Math.Sin(v));
    }
}
