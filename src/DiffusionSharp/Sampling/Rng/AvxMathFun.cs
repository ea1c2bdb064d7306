namespace DiffusionSharp.Sampling.Rng;

/// <summary>
/// Scalar, bit-exact twins of <c>log256_ps</c> and <c>sincos256_ps</c> from PyTorch's
/// <c>aten/src/ATen/native/cpu/avx_mathfun.h</c> (Cephes polynomials by J. Pommier and G. Garberoglio, zlib licence),
/// which <c>torch.randn</c> uses on every x86 CPU with AVX2. The single-precision operations follow the intrinsics
/// one by one, and a multiply followed by an add is fused exactly where GCC contracts them in PyTorch's build
/// (established by matching torch 1.13's output bit for bit): the Horner steps, the range reduction, the
/// <c>y*z + e*q1</c> of the logarithm and the <c>y*z - z/2</c> of the cosine polynomial.
/// </summary>
internal static class AvxMathFun
{
    private const float SqrtHalf = 0.707106781186547524f;
    private const float LogP0 = 7.0376836292E-2f, LogP1 = -1.1514610310E-1f, LogP2 = 1.1676998740E-1f;
    private const float LogP3 = -1.2420140846E-1f, LogP4 = 1.4249322787E-1f, LogP5 = -1.6668057665E-1f;
    private const float LogP6 = 2.0000714765E-1f, LogP7 = -2.4999993993E-1f, LogP8 = 3.3333331174E-1f;
    private const float LogQ1 = -2.12194440e-4f, LogQ2 = 0.693359375f;

    private const float MinusDp1 = -0.78515625f, MinusDp2 = -2.4187564849853515625e-4f, MinusDp3 = -3.77489497744594108e-8f;
    private const float SinP0 = -1.9515295891E-4f, SinP1 = 8.3321608736E-3f, SinP2 = -1.6666654611E-1f;
    private const float CosP0 = 2.443315711809948E-005f, CosP1 = -1.388731625493765E-003f, CosP2 = 4.166664568298827E-002f;
    private const float FourOverPi = 1.27323954473516f;

    /// <summary><c>log256_ps</c>: natural logarithm; NaN for x &lt;= 0.</summary>
    public static float Log(float x)
    {
        bool invalid = x <= 0;
        x = MathF.Max(x, BitConverter.Int32BitsToSingle(0x00800000)); // cut off denormals
        int bits = BitConverter.SingleToInt32Bits(x);
        int exponent = (int)((uint)bits >> 23) - 0x7F;
        x = BitConverter.Int32BitsToSingle((bits & ~0x7F800000) | BitConverter.SingleToInt32Bits(0.5f)); // mantissa in [0.5, 1)
        float e = exponent;
        e += 1;
        bool small = x < SqrtHalf;
        float tmp = small ? x : 0f;
        x -= 1;
        e -= small ? 1 : 0;
        x += tmp;

        float z = x * x;
        float y = LogP0;
        y = MathF.FusedMultiplyAdd(y, x, LogP1);
        y = MathF.FusedMultiplyAdd(y, x, LogP2);
        y = MathF.FusedMultiplyAdd(y, x, LogP3);
        y = MathF.FusedMultiplyAdd(y, x, LogP4);
        y = MathF.FusedMultiplyAdd(y, x, LogP5);
        y = MathF.FusedMultiplyAdd(y, x, LogP6);
        y = MathF.FusedMultiplyAdd(y, x, LogP7);
        y = MathF.FusedMultiplyAdd(y, x, LogP8);
        y *= x;
        y = MathF.FusedMultiplyAdd(y, z, e * LogQ1);
        y -= z * 0.5f;
        x += y;
        x = MathF.FusedMultiplyAdd(e, LogQ2, x);
        return invalid ? float.NaN : x;
    }

    /// <summary><c>sincos256_ps</c>: sine and cosine together, Cephes range reduction by multiples of pi/4.</summary>
    public static void SinCos(float x, out float sin, out float cos)
    {
        bool signSin = float.IsNegative(x);
        x = MathF.Abs(x);
        int j = (int)(x * FourOverPi); // truncation, as _mm256_cvttps_epi32
        j = (j + 1) & ~1;
        float y = j;
        bool swapSignSin = (j & 4) != 0;
        bool polyMask = (j & 2) == 0;       // true: the sine polynomial gives sin, the cosine one cos
        bool signCos = (~(j - 2) & 4) != 0;
        signSin ^= swapSignSin;

        x = MathF.FusedMultiplyAdd(y, MinusDp1, x); // x - y*pi/4 in three parts ("extended precision modular arithmetic")
        x = MathF.FusedMultiplyAdd(y, MinusDp2, x);
        x = MathF.FusedMultiplyAdd(y, MinusDp3, x);

        float z = x * x;
        float yc = MathF.FusedMultiplyAdd(CosP0, z, CosP1);
        yc = MathF.FusedMultiplyAdd(yc, z, CosP2);
        yc *= z;
        yc = MathF.FusedMultiplyAdd(yc, z, -(z * 0.5f));
        yc += 1;

        float ys = MathF.FusedMultiplyAdd(SinP0, z, SinP1);
        ys = MathF.FusedMultiplyAdd(ys, z, SinP2);
        ys *= z;
        ys = MathF.FusedMultiplyAdd(ys, x, x);

        // The intrinsics select by masking and adding, which also turns a -0 into +0.
        float s = (polyMask ? 0f : yc) + (polyMask ? ys : 0f);
        float c = (polyMask ? yc : 0f) + (polyMask ? 0f : ys);
        sin = signSin ? -s : s;
        cos = signCos ? -c : c;
    }
}
