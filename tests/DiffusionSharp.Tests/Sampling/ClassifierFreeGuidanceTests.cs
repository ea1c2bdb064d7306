using DiffusionSharp.Sampling;

namespace DiffusionSharp.Tests.Sampling;

public class ClassifierFreeGuidanceTests
{
    [Fact]
    public void Combine_IsUncondPlusScaleTimesDifference()
    {
        float[] uncond = [1f, 2f, 3f, -0.5f], cond = [2f, 0f, 3f, 0.25f];
        var result = new float[4];
        ClassifierFreeGuidance.Combine(uncond, cond, 7.5f, result);
        Assert.Equal([8.5f, -13f, 3f, 5.125f], result);
    }

    [Fact]
    public void Combine_WithScaleOne_ReturnsCond_AndMayWriteInPlace()
    {
        float[] uncond = [1f, 2f, 3f], cond = [2f, -1f, 0.5f];
        ClassifierFreeGuidance.Combine(uncond, cond, 1f, uncond);
        Assert.Equal(cond, uncond);
    }

    [Fact]
    public void Combine_RejectsMismatchedLengthsAndNonFiniteScales()
    {
        Assert.Throws<ArgumentException>(() => ClassifierFreeGuidance.Combine(new float[3], new float[4], 7f, new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierFreeGuidance.Combine(new float[3], new float[3], float.NaN, new float[3]));
    }
}
