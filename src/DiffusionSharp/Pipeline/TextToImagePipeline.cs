using System.Diagnostics;
using System.Reflection;
using DiffusionSharp.Caching;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Models;
using DiffusionSharp.Sampling;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Pipeline;

/// <summary>
/// Text to image, the whole loop: tokenize -> encode (prompt and negative prompt) -> for each image: seeded noise ->
/// sampler over the UNet with classifier-free guidance (and block caching, when asked) -> VAE decode -> RGB. Latents
/// are channels-last throughout; noise is drawn in PyTorch's [C, H, W] order so a seed gives the same image as the web
/// UIs and sd.cpp.
/// </summary>
public sealed class TextToImagePipeline(StableDiffusionModel model)
{
    public static string Version { get; } =
        typeof(TextToImagePipeline).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0";

    public StableDiffusionModel Model { get; } = model;

    /// <summary>
    /// Generates <see cref="GenerationRequest.BatchCount"/> images. A cancellation requested at any point before this
    /// returns (from <paramref name="progress"/> too) ends it with <see cref="OperationCanceledException"/>: between
    /// steps, before a decode, or at the end; no partial result is returned.
    /// </summary>
    /// <exception cref="InvalidSettingException">A setting is out of range or unknown; the message names it.</exception>
    /// <exception cref="CacheScheduleException">The cache schedule was made for another model, sampler or step count.</exception>
    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var settings = ResolvedSettings.Resolve(request, Model);
        var warnings = new List<string>();
        long seed = request.Seed >= 0 ? request.Seed : Random.Shared.NextInt64(0, uint.MaxValue);
        bool guidanceEmbedded = Model.HasGuidanceEmbedding;
        bool twoPasses = !guidanceEmbedded && settings.CfgScale != 1.0;

        var schedule = Model.CreateNoiseSchedule();
        double[] sigmas = SigmaSchedules.Create(settings.Scheduler, schedule, settings.Steps);
        var cache = request.Cache?.Prepare(CacheTarget(settings, sigmas, twoPasses));

        var clock = Stopwatch.StartNew();
        progress?.Report(new GenerationProgress(0, request.BatchCount, GenerationStage.EncodingText, 0, settings.Steps, clock.Elapsed));
        using var context = EncodeText(request, settings, twoPasses, warnings);   // [1 or 2, 77, C]: [uncond, cond]
        var textTime = clock.Elapsed;

        var images = new List<GeneratedImage>(request.BatchCount);
        for (int k = 0; k < request.BatchCount; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long imageSeed = seed + k;
            var start = clock.Elapsed;
            int evaluations = 0;
            using var session = cache?.StartImage();
            using var latent = Denoise(context, settings, schedule, sigmas, imageSeed, request.Rng, twoPasses, guidanceEmbedded, session,
                new Progress(progress, k, request.BatchCount, clock, session), ref evaluations, cancellationToken);
            var denoised = clock.Elapsed;
            cancellationToken.ThrowIfCancellationRequested();   // cancelled during the last step: skip the decode
            progress?.Report(new GenerationProgress(k, request.BatchCount, GenerationStage.Decoding, settings.Steps, settings.Steps, clock.Elapsed));
            Model.Unet.ActivationPool.Trim();   // the UNet's arena and the decode's activations never take memory at once
            var image = Decode(latent);
            var decoded = clock.Elapsed;
            var cacheStatistics = session?.Statistics;
            string parameters = Parameters(request, settings, imageSeed, cacheStatistics);
            var finalLatent = new GeneratedLatent(latent.Shape[1], latent.Shape[2], latent.Shape[3], latent.Span.ToArray());
            images.Add(new GeneratedImage(image, imageSeed, parameters,
                new GenerationTimings(k == 0 ? textTime : TimeSpan.Zero, denoised - start, decoded - denoised, evaluations), finalLatent,
                cacheStatistics));
        }
        cancellationToken.ThrowIfCancellationRequested();
        progress?.Report(new GenerationProgress(request.BatchCount - 1, request.BatchCount, GenerationStage.Done, settings.Steps, settings.Steps, clock.Elapsed));
        return new GenerationResult(images, warnings, settings);
    }

    /// <summary>
    /// What a block-caching policy sees of <paramref name="request"/>'s run: model, sampler and spacing, steps, UNet calls
    /// per image, UNet batch and shapes (for a schedule's FLOPs and memory before generating).
    /// </summary>
    /// <exception cref="InvalidSettingException">A setting is out of range or unknown.</exception>
    public CacheTarget CacheTargetFor(GenerationRequest request)
    {
        var settings = ResolvedSettings.Resolve(request, Model);
        double[] sigmas = SigmaSchedules.Create(settings.Scheduler, Model.CreateNoiseSchedule(), settings.Steps);
        return CacheTarget(settings, sigmas, !Model.HasGuidanceEmbedding && settings.CfgScale != 1.0);
    }

    private CacheTarget CacheTarget(ResolvedSettings settings, double[] sigmas, bool twoPasses)
    {
        int scale = Model.LatentScale;
        return new CacheTarget(Model, settings.Sampler.Name, SchedulerNames.Name(settings.Scheduler), settings.Steps,
            settings.Sampler.Create(settings.Eta).ModelEvaluations(sigmas), twoPasses ? 2 : 1, settings.Height / scale, settings.Width / scale,
            Model.TextEncoder.Config.MaxPositionEmbeddings);
    }

    /// <summary>[uncond, cond] text embeddings, or [cond] alone when one pass per step suffices.</summary>
    private Tensor EncodeText(GenerationRequest request, ResolvedSettings settings, bool twoPasses, List<string> warnings)
    {
        var tokenizer = Model.Tokenizer;
        int length = Model.TextEncoder.Config.MaxPositionEmbeddings;
        var cond = tokenizer.Tokenize(request.Prompt, length);
        if (cond.Truncated)
            warnings.Add($"The prompt is {cond.TokenCount} tokens; only the first {length - 2} are used.");
        if (!twoPasses) return Model.TextEncoder.Forward(cond.InputIds, 1, settings.ClipSkip);
        var uncond = tokenizer.Tokenize(request.NegativePrompt, length);
        if (uncond.Truncated)
            warnings.Add($"The negative prompt is {uncond.TokenCount} tokens; only the first {length - 2} are used.");
        var ids = new int[2 * length];
        uncond.InputIds.AsSpan().CopyTo(ids);
        cond.InputIds.AsSpan().CopyTo(ids.AsSpan(length));
        return Model.TextEncoder.Forward(ids, 2, settings.ClipSkip);
    }

    private Tensor Denoise(Tensor context, ResolvedSettings settings, NoiseSchedule schedule, double[] sigmas, long seed, RngType rng,
        bool twoPasses, bool guidanceEmbedded, BlockCacheSession? cache, Progress progress, ref int evaluations, CancellationToken cancellationToken)
    {
        int scale = Model.LatentScale, h = settings.Height / scale, w = settings.Width / scale, c = Model.Unet.Config.InChannels;
        int n = h * w * c;
        var noise = new ChannelsLastNoise(RngTypes.Create(rng, unchecked((ulong)seed)), c, h, w);
        var x = new Tensor(1, h, w, c);                                                 // [1, h, w, C]
        var initial = new float[n];
        noise.NextNormal(initial);
        Sampler.InitialLatent(initial, sigmas, x.Span);

        var unet = Model.Unet;
        float cfg = (float)settings.CfgScale;
        float guidanceInput = (float)(settings.CfgScale - Model.Defaults.GuidanceEmbeddingOffset);
        int calls = 0;
        int batch = twoPasses ? 2 : 1;
        using var sample = new Tensor(batch, h, w, c);                                  // [B, h, w, C]: the UNet input of every call
        void ModelFunction(ReadOnlySpan<float> scaledInput, double timestep, Span<float> output)
        {
            cache?.BeginEvaluation(calls);
            calls++;
            for (int b = 0; b < batch; b++) scaledInput.CopyTo(sample.Span.Slice(b * n, n));
            Span<float> t = stackalloc float[batch];
            t.Fill((float)timestep);
            Span<float> g = stackalloc float[batch];
            g.Fill(guidanceInput);
            using var prediction = unet.Forward(sample, t, context, guidanceEmbedded ? g : default, cache);   // [B, h, w, C]
            if (twoPasses) ClassifierFreeGuidance.Combine(prediction.Span[..n], prediction.Span[n..], cfg, output);
            else prediction.Span.CopyTo(output);
        }

        var denoiser = new Denoiser(ModelFunction, schedule, Model.Scheduler.Prediction);
        var sampler = settings.Sampler.Create(settings.Eta);
        try
        {
            sampler.Sample(denoiser, x.Span, sigmas, noise, progress, cancellationToken);
        }
        catch
        {
            x.Dispose();
            throw;
        }
        evaluations = calls;
        return x;
    }

    /// <summary>
    /// Latent -> pixels: z / scaling_factor through the VAE decoder, then (x + 1) / 2 clamped to [0, 1] and scaled
    /// to 0..255 with truncation, as the web UI (<c>astype(np.uint8)</c>) and sd.cpp convert.
    /// </summary>
    private RgbImage Decode(Tensor latent)
    {
        using var z = latent.Clone();                                                   // [1, h, w, C]
        float inverse = 1f / Model.Vae.Config.ScalingFactor;
        foreach (ref float v in z.Span) v *= inverse;
        using var decoded = Model.Vae.Decode(z);                                        // [1, H, W, 3]
        int height = decoded.Shape[1], width = decoded.Shape[2];
        var pixels = new byte[width * height * 3];
        var src = decoded.Span;
        for (int i = 0; i < pixels.Length; i++)
        {
            float v = (src[i] + 1f) * 0.5f;
            pixels[i] = (byte)(Math.Clamp(float.IsNaN(v) ? 0f : v, 0f, 1f) * 255f);
        }
        return new RgbImage(width, height, pixels);
    }

    private string Parameters(GenerationRequest request, ResolvedSettings s, long seed, CacheStatistics? cache)
    {
        var sampler = s.Sampler.Infotext(s.Scheduler);
        var fields = new List<KeyValuePair<string, string>>
        {
            new("Steps", s.Steps.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("Sampler", sampler.Sampler),
            new("Schedule type", sampler.ScheduleType),
            new("CFG scale", Infotext.Number(s.CfgScale)),
            new("Seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("Size", $"{s.Width}x{s.Height}"),
        };
        if (Model.Hash is { } hash) fields.Add(new("Model hash", hash));
        fields.Add(new("Model", Model.Name));
        if (request.Rng != RngType.Cuda) fields.Add(new("RNG", RngTypes.WebUiLabel(request.Rng)));
        if (s.Eta is { } eta) fields.Add(new("Eta", Infotext.Number(eta)));
        if (s.ClipSkip > 1) fields.Add(new("Clip skip", s.ClipSkip.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (request.Cache is { } policy && cache is not null)
        {
            fields.Add(new("Block cache", policy.Description));
            fields.Add(new("Block cache skipped", string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{cache.BlockSkips}/{cache.BlockEvaluations} blocks, {100 * cache.SavedFraction:0.0}% FLOPs")));
        }
        fields.Add(new("Version", "DiffusionSharp " + Version));
        return Infotext.Format(request.Prompt, request.NegativePrompt, fields);
    }

    /// <summary>Sampler steps -> generation progress for image <c>index</c>, with what the cache has skipped so far.</summary>
    private sealed class Progress(IProgress<GenerationProgress>? target, int index, int count, Stopwatch clock, BlockCacheSession? cache)
        : IProgress<SamplerProgress>
    {
        public void Report(SamplerProgress value)
            => target?.Report(new GenerationProgress(index, count, GenerationStage.Denoising, value.Step, value.Steps, clock.Elapsed, cache?.Statistics));
    }
}
