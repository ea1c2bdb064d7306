using System.Text.Json;
using DiffusionSharp.Sampling;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Sampling;

/// <summary>
/// Replays tools/fixtures/sampling_reference.py: each sampler runs on the reference's sigmas with the same analytic
/// denoiser and the same stored noise draws, and must land on the reference's final latent.
/// </summary>
public class SamplerTests
{
    private static JsonElement Runs => SamplingFixture.Load("samplers.json").GetProperty("runs");

    public static TheoryData<int, string> FixtureRuns()
    {
        var data = new TheoryData<int, string>();
        int i = 0;
        foreach (var run in Runs.EnumerateArray())
        {
            string eta = run.GetProperty("eta").ValueKind == JsonValueKind.Null ? "" : $" eta={run.GetProperty("eta").GetDouble()}";
            data.Add(i++, $"{run.GetProperty("sampler").GetString()} {run.GetProperty("spacing").GetString()} N={run.GetProperty("steps").GetInt32()}{eta}");
        }
        return data;
    }

    private static Sampler Create(JsonElement run)
    {
        var info = SamplerRegistry.Parse(run.GetProperty("sampler").GetString()!).Sampler;
        var eta = run.GetProperty("eta");
        return info.Create(eta.ValueKind == JsonValueKind.Null ? null : eta.GetDouble());
    }

    [Theory]
    [MemberData(nameof(FixtureRuns))]
    public void Sample_MatchesReference(int index, string label)
    {
        var run = Runs[index];
        var sigmas = run.GetProperty("sigmas").Doubles();
        var x = run.GetProperty("x0").Floats();
        var noise = new StoredNoise(run.GetProperty("noise").DoubleRows());
        var denoiser = new ToyDenoiser();
        var sampler = Create(run);

        sampler.Sample(denoiser, x, sigmas, noise);

        Tolerance.AssertClose(run.GetProperty("x_final").Floats(), x, 1e-5, 1e-5, label);
        int modelCalls = run.GetProperty("model_calls").GetInt32();
        Assert.Equal(modelCalls, denoiser.Calls);
        Assert.Equal(modelCalls, sampler.ModelEvaluations(sigmas));
        Assert.Equal(run.GetProperty("noise").GetArrayLength(), noise.Used);
    }

    [Theory]
    [MemberData(nameof(FixtureRuns))]
    public void Progress_ReportsEveryStepAndEveryModelEvaluation(int index, string label)
    {
        var run = Runs[index];
        var sigmas = run.GetProperty("sigmas").Doubles();
        var progress = new RecordingProgress();
        var denoiser = new ToyDenoiser();
        int steps = sigmas.Length - 1, total = run.GetProperty("model_calls").GetInt32();

        Create(run).Sample(denoiser, run.GetProperty("x0").Floats(), sigmas, new StoredNoise(run.GetProperty("noise").DoubleRows()), progress);

        Assert.True(steps == progress.Reports.Count, label);
        for (int i = 0; i < steps; i++)
        {
            var report = progress.Reports[i];
            Assert.Equal(i + 1, report.Step);
            Assert.Equal(steps, report.Steps);
            Assert.Equal(total, report.TotalModelEvaluations);
            Assert.Equal(sigmas[i + 1], report.Sigma);
        }
        Assert.Equal(total, progress.Reports[^1].ModelEvaluations);
        Assert.True(progress.Reports.Zip(progress.Reports.Skip(1)).All(p => p.First.ModelEvaluations < p.Second.ModelEvaluations));
    }

    [Theory]
    [InlineData(5, 0.0)]
    [InlineData(5, 0.5)]
    [InlineData(8, 0.3)]
    public void Ddim_InSigmaForm_ReproducesA1111sDdim(int steps, double eta)
    {
        // A1111's ddim() works on x_t = x / sqrt(1 + sigma^2) at its timesteps 1 + k (1000 // N), stops at timestep 1 and
        // starts from unit noise as x_t. The same walk in sigma form: sigmas of those timesteps without a final 0,
        // starting latent noise * sqrt(1 + sigma_0^2).
        var a = SamplingFixture.Load("samplers.json").GetProperty("a1111_ddim").EnumerateArray()
            .Single(e => e.GetProperty("steps").GetInt32() == steps && e.GetProperty("eta").GetDouble() == eta);
        var schedule = NoiseSchedule.StableDiffusion;
        var sigmas = a.GetProperty("timesteps").Ints().Reverse().Select(t => schedule.Sigmas[t]).ToArray();
        double first = sigmas[0], last = sigmas[^1];
        var x = a.GetProperty("initial_noise").Floats().Select(n => (float)(n * Math.Sqrt(1 + first * first))).ToArray();
        var noise = new StoredNoise(a.GetProperty("noise").DoubleRows());
        var denoiser = new ToyDenoiser();

        new DdimSampler(eta).Sample(denoiser, x, sigmas, noise);

        var xVp = x.Select(v => (float)(v / Math.Sqrt(1 + last * last))).ToArray();
        Tolerance.AssertClose(a.GetProperty("x_final_vp").Floats(), xVp, 1e-5, 1e-5, $"A1111 DDIM N={steps} eta={eta}");
        Assert.Equal(a.GetProperty("model_calls").GetInt32(), denoiser.Calls);
        Assert.Equal(eta > 0 ? sigmas.Length - 1 : 0, noise.Used); // A1111 also draws (and multiplies by 0) when eta = 0
    }

    [Fact]
    public void DeterministicVariants_EqualEuler()
    {
        // DDIM with eta 0 and Euler ancestral with eta 0 are Euler steps, and draw no noise.
        var sigmas = SigmaSchedules.Karras(NoiseSchedule.StableDiffusion, 6);
        float[] Run(Sampler sampler)
        {
            var x = Enumerable.Range(0, 16).Select(i => (float)(Math.Sin(i) * sigmas[0])).ToArray();
            sampler.Sample(new ToyDenoiser(), x, sigmas, new StoredNoise([]));
            return x;
        }
        var euler = Run(new EulerSampler());
        Tolerance.AssertClose(euler, Run(new DdimSampler(0)), 1e-6, 1e-6, "ddim eta 0");
        Tolerance.AssertClose(euler, Run(new EulerAncestralSampler(eta: 0)), 1e-6, 1e-6, "euler_a eta 0");
        Assert.False(new DdimSampler(0).IsStochastic);
        Assert.False(new EulerAncestralSampler(eta: 0).IsStochastic);
        Assert.True(new DdimSampler(0.5).IsStochastic);
    }

    [Fact]
    public void Cancellation_StopsBetweenSteps()
    {
        var sigmas = SigmaSchedules.Discrete(NoiseSchedule.StableDiffusion, 10);
        using var cts = new CancellationTokenSource();
        var progress = new RecordingProgress(p => { if (p.Step == 3) cts.Cancel(); });
        var denoiser = new ToyDenoiser();
        var x = new float[8];

        Assert.Throws<OperationCanceledException>(() =>
            new HeunSampler().Sample(denoiser, x, sigmas, new StoredNoise([]), progress, cts.Token));
        Assert.Equal(6, denoiser.Calls); // three whole Heun steps, nothing of the fourth
        Assert.Equal(3, progress.Reports.Count);
    }

    [Fact]
    public void Cancellation_BeforeTheFirstStep_CallsNoModel()
    {
        var denoiser = new ToyDenoiser();
        Assert.Throws<OperationCanceledException>(() => new EulerSampler().Sample(denoiser, new float[8],
            SigmaSchedules.Discrete(NoiseSchedule.StableDiffusion, 4), new StoredNoise([]), null, new CancellationToken(true)));
        Assert.Equal(0, denoiser.Calls);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void NonFiniteModelOutput_StopsWithTheStepNamed(float poison)
    {
        var sigmas = SigmaSchedules.Discrete(NoiseSchedule.StableDiffusion, 4);
        var denoiser = new ToyDenoiser { Poison = (5, poison) }; // Heun's fifth call is the first of step 3
        var e = Assert.Throws<NonFiniteModelOutputException>(() =>
            new HeunSampler().Sample(denoiser, new float[8], sigmas, new StoredNoise([])));
        Assert.Equal(3, e.Step);
        Assert.Equal(4, e.Steps);
        Assert.Equal(sigmas[2], e.Sigma);
        Assert.Contains("step 3 of 4", e.Message);
    }

    [Fact]
    public void Sample_RejectsBadInputs()
    {
        var sigmas = SigmaSchedules.Discrete(NoiseSchedule.StableDiffusion, 4);
        var sampler = new EulerSampler();
        var noise = new StoredNoise([]);
        Assert.Throws<ArgumentException>(() => sampler.Sample(new ToyDenoiser(), [1f, float.NaN], sigmas, noise));
        Assert.Throws<ArgumentException>(() => sampler.Sample(new ToyDenoiser(), [], sigmas, noise));
        Assert.Throws<ArgumentException>(() => sampler.Sample(new ToyDenoiser(), new float[2], [14.6, 14.6, 0], noise));
        Assert.Throws<ArgumentException>(() => sampler.Sample(new ToyDenoiser(), new float[2], [0.0], noise));
        Assert.Throws<ArgumentNullException>(() => sampler.Sample(null!, new float[2], sigmas, noise));
        Assert.Throws<ArgumentNullException>(() => sampler.Sample(new ToyDenoiser(), new float[2], sigmas, null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EulerAncestralSampler(eta: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DdimSampler(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DpmPP2SAncestralSampler(sNoise: double.PositiveInfinity));
    }

    [Fact]
    public void InitialLatent_IsNoiseTimesTheFirstSigma()
    {
        float[] noise = [1f, -0.5f, 2f];
        var x = new float[3];
        Sampler.InitialLatent(noise, [14.5, 0], x);
        Assert.Equal([14.5f, -7.25f, 29f], x);
        Assert.Throws<ArgumentException>(() => Sampler.InitialLatent(noise, [14.5, 0], new float[2]));
    }

    [Fact]
    public void Samplers_AreElementwise_SoTheLatentLayoutDoesNotMatter()
    {
        // Permuting the latent, the noise and a position-free denoiser permutes the result.
        var sigmas = SigmaSchedules.Karras(NoiseSchedule.StableDiffusion, 5);
        var x = Enumerable.Range(0, 12).Select(i => (float)(Math.Cos(3 * i) * sigmas[0])).ToArray();
        var draws = Enumerable.Range(0, 4).Select(k => Enumerable.Range(0, 12).Select(i => Math.Sin(i * 7 + k)).ToArray()).ToArray();
        int[] perm = [3, 11, 0, 7, 1, 9, 2, 10, 5, 8, 6, 4];
        var y = perm.Select(p => x[p]).ToArray();
        var permutedDraws = draws.Select(d => perm.Select(p => d[p]).ToArray()).ToArray();

        new DpmPP2SAncestralSampler().Sample(new PositionFreeDenoiser(), x, sigmas, new StoredNoise(draws));
        new DpmPP2SAncestralSampler().Sample(new PositionFreeDenoiser(), y, sigmas, new StoredNoise(permutedDraws));

        Assert.Equal(perm.Select(p => x[p]), y);
    }

    [Fact]
    public void Steps_AllocateNothing_OnlyTheRunItsBuffers()
    {
        // A 40-step run allocates exactly what a 4-step run does: the per-call scratch buffers, nothing per step.
        foreach (var info in SamplerRegistry.All)
        {
            var sampler = info.Create();
            var denoiser = new PositionFreeDenoiser();
            var noise = new PhiloxGenerator(7);
            long Allocated(int steps)
            {
                var sigmas = SigmaSchedules.Create(Scheduler.Karras, NoiseSchedule.StableDiffusion, steps);
                var x = new float[256];
                long before = GC.GetAllocatedBytesForCurrentThread();
                sampler.Sample(denoiser, x, sigmas, noise);
                return GC.GetAllocatedBytesForCurrentThread() - before;
            }
            Allocated(4); // warm up the JIT
            Assert.True(Allocated(4) == Allocated(40), $"{info.Name} allocates per step");
        }
    }

    private sealed class PositionFreeDenoiser : IDenoiser
    {
        public void Denoise(ReadOnlySpan<float> x, double sigma, Span<float> denoised)
        {
            for (int j = 0; j < x.Length; j++)
                denoised[j] = (float)(0.5 * Math.Tanh(x[j]) + 0.1 * Math.Sin(sigma));
        }
    }
}
