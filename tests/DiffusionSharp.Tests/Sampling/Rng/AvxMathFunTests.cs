using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Tests.Sampling.Rng;

/// <summary>The polynomial twins against the platform's libm (their reference): the bit-exact claim is TorchCpuGeneratorTests'.</summary>
public class AvxMathFunTests
{
    [Fact]
    public void Log_IsWithinTwoUlpsOfLibm_OnTheUniformsTorchFeedsIt()
    {
        for (int k = 1; k <= 1 << 24; k += 97) // 1 - u for every 97th 24-bit uniform, down to 2^-24
        {
            float x = k * (1f / (1 << 24));
            float expected = (float)Math.Log(x), actual = AvxMathFun.Log(x);
            Assert.True(Math.Abs(actual - expected) <= 2 * MathF.BitIncrement(Math.Abs(expected)) - 2 * Math.Abs(expected) + 1e-12f,
                $"log({x:R}) = {actual:R}, libm {expected:R}");
        }
        Assert.Equal(0f, AvxMathFun.Log(1f));
        Assert.True(float.IsNaN(AvxMathFun.Log(0f)));
        Assert.True(float.IsNaN(AvxMathFun.Log(-1f)));
    }

    [Fact]
    public void SinCos_IsWithin2e7OfLibm_OverOneTurn()
    {
        for (int k = 0; k < 1 << 16; k++)
        {
            float theta = (float)(2 * Math.PI) * k / (1 << 16);
            AvxMathFun.SinCos(theta, out float sin, out float cos);
            Assert.True(Math.Abs(sin - Math.Sin(theta)) <= 2e-7, $"sin({theta:R}) = {sin:R}, libm {Math.Sin(theta):R}");
            Assert.True(Math.Abs(cos - Math.Cos(theta)) <= 2e-7, $"cos({theta:R}) = {cos:R}, libm {Math.Cos(theta):R}");
        }
        AvxMathFun.SinCos(-1f, out float s, out float c);
        Assert.Equal(-Math.Sin(1), s, 2e-7);
        Assert.Equal(Math.Cos(1), c, 2e-7);
    }
}
