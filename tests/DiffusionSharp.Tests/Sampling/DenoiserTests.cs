using DiffusionSharp.Sampling;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Sampling;

public class DenoiserTests
{
    /// <summary>The toy UNet of sampling_reference.py: <c>sin(1.3 * scaled_j + t / 500 + j)</c>.</summary>
    private static void ToyUnet(ReadOnlySpan<float> scaledInput, double timestep, Span<float> output)
    {
        for (int j = 0; j < scaledInput.Length; j++)
            output[j] = (float)Math.Sin(1.3 * scaledInput[j] + timestep / 500.0 + j);
    }

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, SamplingFixture.Load("denoiser.json").GetProperty("cases").GetArrayLength()));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Denoise_MatchesKDiffusionCompVisDenoiser(int index)
    {
        var c = SamplingFixture.Load("denoiser.json").GetProperty("cases")[index];
        var prediction = c.GetProperty("prediction").GetString() == "v" ? ModelPrediction.VPrediction : ModelPrediction.Epsilon;
        double sigma = c.GetProperty("sigma").GetDouble();
        var x = c.GetProperty("x").Floats();
        double seenTimestep = double.NaN;
        float[] seenInput = [];
        var denoiser = new Denoiser((input, t, output) =>
        {
            seenTimestep = t;
            seenInput = input.ToArray();
            ToyUnet(input, t, output);
        }, NoiseSchedule.StableDiffusion, prediction);

        var denoised = new float[x.Length];
        denoiser.Denoise(x, sigma, denoised);

        Assert.Equal(c.GetProperty("timestep").GetDouble(), seenTimestep, 1e-9);
        double cIn = c.GetProperty("c_in").GetDouble();
        Tolerance.AssertClose(x.Select(v => (float)(v * cIn)).ToArray(), seenInput, 0, 1e-7, "scaled input");
        Tolerance.AssertClose(c.GetProperty("denoised").Floats(), denoised, 2e-6, 2e-6, $"{prediction} denoised at sigma {sigma}");
    }

    [Fact]
    public void Denoise_AllocatesNothingAfterTheFirstCall()
    {
        var denoiser = new Denoiser(ToyUnet, NoiseSchedule.StableDiffusion);
        var x = new float[4096];
        var denoised = new float[4096];
        denoiser.Denoise(x, 3.0, denoised);
        long before = GC.GetAllocatedBytesForCurrentThread();
        denoiser.Denoise(x, 2.0, denoised);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    [Fact]
    public void Denoise_RejectsBadArguments()
    {
        var denoiser = new Denoiser(ToyUnet, NoiseSchedule.StableDiffusion);
        Assert.Throws<ArgumentOutOfRangeException>(() => denoiser.Denoise(new float[4], 0, new float[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => denoiser.Denoise(new float[4], double.NaN, new float[4]));
        Assert.Throws<ArgumentException>(() => denoiser.Denoise(new float[4], 1, new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Denoiser(ToyUnet, NoiseSchedule.StableDiffusion, (ModelPrediction)7));
    }
}
