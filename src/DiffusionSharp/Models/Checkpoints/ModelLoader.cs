using System.Diagnostics;
using System.Text.Json;
using DiffusionSharp.IO;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Models.Clip;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Models.Vae;
using DiffusionSharp.Nn;
using DiffusionSharp.Quantization;
using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Models.Checkpoints;

/// <summary>Options for <see cref="ModelLoader.Load"/>.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>
    /// A diffusers folder whose <c>unet/</c>, <c>text_encoder/</c>, <c>vae/</c> config.json files replace what a single
    /// file's shapes cannot tell (attention heads, norm groups) — for checkpoints that are not the standard SD 1.x shape.
    /// </summary>
    public string? ConfigFolder { get; init; }

    /// <summary>Overrides the prediction type (a v-prediction SD 1.x fine-tune in a single file cannot be told by shapes).</summary>
    public Sampling.ModelPrediction? Prediction { get; init; }

    /// <summary>Load the VAE encoder too (img2img); text-to-image needs only the decoder.</summary>
    public bool LoadVaeEncoder { get; init; }

    /// <summary>
    /// A quantized UNet file (<c>diffusion quantize</c>) to use instead of the model's own UNet weights; the text
    /// encoder and VAE still come from the model. (A diffusers folder whose <c>unet/</c> weight file is itself a
    /// quantized file is recognised without this.)
    /// </summary>
    public string? QuantizedUnet { get; init; }

    /// <summary>
    /// How the GEMM weights of every linear and convolution layer (text encoder, UNet, VAE) are held in memory:
    /// fp32, or 16-bit (fp16, lossless for fp16 checkpoints; bf16) at half the memory, widened to fp32 inside the GEMM.
    /// Arithmetic is fp32 either way. Quantized layers are unaffected.
    /// </summary>
    public WeightPrecision Precision { get; init; } = WeightPrecision.Float32;
}

/// <summary>
/// Opens a model in either layout users have: an original single-file checkpoint (<c>.safetensors</c>, LDM key
/// names) or a diffusers folder (<c>model_index.json</c>, <c>unet/</c>, <c>text_encoder/</c>, <c>vae/</c>, ...).
/// Every failure is a <see cref="ModelLoadException"/> naming the file and what was found.
/// </summary>
public static class ModelLoader
{
    public static StableDiffusionModel Load(string path, ModelLoadOptions? options = null, IProgress<string>? progress = null)
    {
        options ??= new ModelLoadOptions();
        var stopwatch = Stopwatch.StartNew();
        try
        {
            if (Directory.Exists(path))
                return LoadFolder(Path.GetFullPath(path), options, progress, stopwatch);
            if (!File.Exists(path))
                throw new ModelLoadException(path, $"Model not found: '{path}' is neither a file nor a folder.");
            return LoadSingleFile(Path.GetFullPath(path), options, progress, stopwatch);
        }
        catch (Exception e) when (e is FileFormatException or ConfigException or WeightException or InvalidDataException or IOException)
        {
            throw new ModelLoadException(path, $"Cannot load model '{path}': {e.Message}", e);
        }
    }

    // ----------------------------------------------------------------------------------------- single file

    private static StableDiffusionModel LoadSingleFile(string path, ModelLoadOptions options, IProgress<string>? progress, Stopwatch stopwatch)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".ckpt" or ".pt" or ".pth" or ".bin" || SafetensorsFile.LooksLikePickle(path))
            throw new ModelLoadException(path,
                $"'{path}' is a PyTorch pickle checkpoint. Pickles can run arbitrary code when loaded, so DiffusionSharp never " +
                "unpickles them. Convert it to safetensors first (for example with the web UI's checkpoint merger, or " +
                "`safetensors.torch.save_file(torch.load(f, weights_only=True)[\"state_dict\"], out)`), then load the .safetensors file.");

        progress?.Report($"Reading {Path.GetFileName(path)}");
        var file = SafetensorsFile.Open(path);
        try
        {
            var shapes = file.Tensors.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
            var family = ModelFamilyDetector.Detect(shapes);
            if (!family.IsSupported)
                throw new ModelLoadException(path, family.Family == ModelFamily.Unknown
                    ? $"'{path}' is not a Stable Diffusion 1.x checkpoint: found {family.Evidence}."
                    : $"'{path}' is a {family.DisplayName} checkpoint ({family.Evidence}), which is not supported: only Stable Diffusion 1.x text-to-image checkpoints are, so far.");

            var mapping = LdmKeyMap.Build(shapes.Keys);
            var warnings = new List<string>();
            if (mapping.Unknown.Count > 0)
                warnings.Add($"{mapping.Unknown.Count} tensors with unrecognised names were ignored (first: {mapping.Unknown[0]}).");

            var unetSource = new LdmWeightSource(file, mapping, ModelComponent.Unet);
            var textSource = new LdmWeightSource(file, mapping, ModelComponent.TextEncoder);
            var vaeSource = new LdmWeightSource(file, mapping, ModelComponent.Vae);
            Func<string, long[]?> ShapeIn(IWeightSource s) => k => s.Contains(k) ? s.GetShape(k) : null;

            var unetConfig = SingleFileConfigDetector.DetectUnet(ShapeIn(unetSource));
            var textConfig = SingleFileConfigDetector.DetectTextEncoder(ShapeIn(textSource));
            var vaeConfig = SingleFileConfigDetector.DetectVae(ShapeIn(vaeSource));
            var defaults = ModelDefaults.Sd15;
            if (options.ConfigFolder is { } cf)
            {
                unetConfig = UnetConfig.FromJson(ReadText(Path.Combine(cf, "unet", "config.json")), Path.Combine(cf, "unet", "config.json"));
                textConfig = ClipTextConfig.FromJson(ReadText(Path.Combine(cf, "text_encoder", "config.json")), Path.Combine(cf, "text_encoder", "config.json"));
                vaeConfig = VaeConfig.FromJson(ReadText(Path.Combine(cf, "vae", "config.json")), Path.Combine(cf, "vae", "config.json"));
                defaults = defaults with
                {
                    Width = unetConfig.SampleSize * vaeConfig.DownscaleFactor,
                    Height = unetConfig.SampleSize * vaeConfig.DownscaleFactor,
                };
            }
            else
            {
                CheckDetectedConfigs(path, unetConfig, textConfig, vaeConfig);
            }
            var scheduler = SchedulerConfig.Sd15 with { Prediction = options.Prediction ?? Sampling.ModelPrediction.Epsilon };
            using var quantized = options.QuantizedUnet is { } q ? QuantizedUnetFile.Open(q) : null;
            var model = Build(path, Path.GetFileNameWithoutExtension(path), family, ClipTokenizer.Default,
                unetSource, quantized, unetConfig, textSource, textConfig, vaeSource, vaeConfig, scheduler, defaults,
                options, progress, warnings, stopwatch);
            return model;
        }
        finally
        {
            // Every weight is converted and packed into native memory at load: the mapping is no longer needed.
            file.Dispose();
        }
    }

    /// <summary>
    /// A single file records no attention heads or norm groups; the detected configs take SD 1.5's. When the shapes
    /// do not fit those (a scaled-down or otherwise non-standard checkpoint), say so and how to give the real configs.
    /// </summary>
    private static void CheckDetectedConfigs(string path, UnetConfig unet, ClipTextConfig text, VaeConfig vae)
    {
        try
        {
            unet.Validate("UNet");
            text.Validate("text encoder");
            vae.Validate("VAE");
        }
        catch (ConfigException e)
        {
            throw new ModelLoadException(path,
                $"'{path}' is not the standard SD 1.x shape: a single file does not record attention heads or group-norm groups, " +
                $"and SD 1.5's do not fit its tensors ({e.Message}). Give the folder of its diffusers config.json files " +
                "(unet/, text_encoder/, vae/) with --model-config.", e);
        }
    }

    /// <summary>
    /// The UNet tensors of a model by diffusers key, as <see cref="Load"/> reads them (single file or folder), and the
    /// files they come from: what <c>diffusion quantize</c> copies into a quantized file. Dispose the source.
    /// </summary>
    public static ComponentWeights OpenUnetWeights(string path, out IReadOnlyList<string> files)
    {
        try
        {
            if (Directory.Exists(path))
            {
                files = WeightFiles(Path.Combine(path, "unet"), "diffusion_pytorch_model");
                var source = SafetensorsWeightSource.Open(files);
                return new ComponentWeights(source, source);
            }
            var file = SafetensorsFile.Open(path);
            try
            {
                files = [path];
                return new ComponentWeights(new LdmWeightSource(file, LdmKeyMap.Build(file.Tensors.Select(t => t.Name)), ModelComponent.Unet), file);
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is FileFormatException or InvalidDataException or IOException)
        {
            throw new ModelLoadException(path, $"Cannot read the UNet weights of '{path}': {e.Message}", e);
        }
    }

    /// <summary>A component's weights (<see cref="OpenUnetWeights"/>); disposing closes the files under them.</summary>
    public sealed class ComponentWeights(IWeightSource inner, IDisposable owned) : IWeightSource, IDisposable
    {
        public IEnumerable<string> Keys => inner.Keys;
        public bool Contains(string key) => inner.Contains(key);
        public long[] GetShape(string key) => inner.GetShape(key);
        public void Read(string key, Span<float> destination) => inner.Read(key, destination);
        public string Describe(string key) => inner.Describe(key);
        public void Dispose() => owned.Dispose();
    }

    // ------------------------------------------------------------------------------------------- folder

    private static StableDiffusionModel LoadFolder(string folder, ModelLoadOptions options, IProgress<string>? progress, Stopwatch stopwatch)
    {
        foreach (string unsupported in new[] { "text_encoder_2", "transformer" })
            if (Directory.Exists(Path.Combine(folder, unsupported)))
                throw new ModelLoadException(folder, $"'{folder}' has a '{unsupported}/' folder: an SDXL, SD3 or FLUX pipeline, which is not supported yet.");
        string unetDir = Path.Combine(folder, "unet"), textDir = Path.Combine(folder, "text_encoder"), vaeDir = Path.Combine(folder, "vae");
        foreach (string dir in new[] { unetDir, textDir, vaeDir })
            if (!Directory.Exists(dir))
                throw new ModelLoadException(folder, $"'{folder}' is not a diffusers model folder: '{Path.GetFileName(dir)}/' is missing " +
                    "(expected model_index.json with unet/, text_encoder/ and vae/).");

        var unetConfig = UnetConfig.FromJson(ReadText(Path.Combine(unetDir, "config.json")), Path.Combine(unetDir, "config.json"));
        var textConfig = ClipTextConfig.FromJson(ReadText(Path.Combine(textDir, "config.json")), Path.Combine(textDir, "config.json"));
        var vaeConfig = VaeConfig.FromJson(ReadText(Path.Combine(vaeDir, "config.json")), Path.Combine(vaeDir, "config.json"));
        string schedulerPath = Path.Combine(folder, "scheduler", "scheduler_config.json");
        var scheduler = File.Exists(schedulerPath) ? SchedulerConfig.FromJson(ReadText(schedulerPath), schedulerPath) : SchedulerConfig.Sd15;
        if (options.Prediction is { } p) scheduler = scheduler with { Prediction = p };

        if (unetConfig.CrossAttentionDim != textConfig.HiddenSize)
            throw new ModelLoadException(folder, $"The UNet's cross_attention_dim {unetConfig.CrossAttentionDim} does not match the text encoder's hidden_size {textConfig.HiddenSize}.");
        if (unetConfig.InChannels != vaeConfig.LatentChannels)
            throw new ModelLoadException(folder, $"The UNet takes {unetConfig.InChannels} input channels but the VAE makes {vaeConfig.LatentChannels}-channel latents" +
                (unetConfig.InChannels == 9 ? " (an inpainting UNet, not supported yet)." : "."));
        var family = ClassifyFolder(unetConfig, textConfig, vaeConfig);
        if (!family.IsSupported)
            throw new ModelLoadException(folder, $"'{folder}' is a {family.DisplayName} model ({family.Evidence}); only Stable Diffusion 1.x and MobileDiffusion-style models are supported so far.");

        var defaults = ModelDefaults.Sd15 with
        {
            Width = unetConfig.SampleSize * vaeConfig.DownscaleFactor,
            Height = unetConfig.SampleSize * vaeConfig.DownscaleFactor,
        };
        string defaultsPath = Path.Combine(folder, ModelDefaults.FileName);
        if (File.Exists(defaultsPath)) defaults = ModelDefaults.FromJson(ReadText(defaultsPath), defaultsPath, defaults);

        string tokenizerDir = Path.Combine(folder, "tokenizer");
        var tokenizer = File.Exists(Path.Combine(tokenizerDir, "vocab.json")) && File.Exists(Path.Combine(tokenizerDir, "merges.txt"))
            ? ClipTokenizer.FromFiles(Path.Combine(tokenizerDir, "vocab.json"), Path.Combine(tokenizerDir, "merges.txt"))
            : ClipTokenizer.Default;

        var unetFiles = WeightFiles(unetDir, "diffusion_pytorch_model");
        string? quantizedPath = options.QuantizedUnet ?? (unetFiles.Count == 1 && QuantizedUnetFile.IsQuantizedFile(unetFiles[0]) ? unetFiles[0] : null);
        using var quantized = quantizedPath != null ? QuantizedUnetFile.Open(quantizedPath) : null;
        using var unetSource = quantized == null ? SafetensorsWeightSource.Open(unetFiles) : null;
        using var textSource = SafetensorsWeightSource.Open(WeightFiles(textDir, "model"));
        using var vaeSource = SafetensorsWeightSource.Open(WeightFiles(vaeDir, "diffusion_pytorch_model"));
        return Build(folder, Path.GetFileName(folder.TrimEnd(Path.DirectorySeparatorChar)), family, tokenizer,
            unetSource, quantized, unetConfig, textSource, textConfig, vaeSource, vaeConfig, scheduler, defaults,
            options, progress, new List<string>(), stopwatch);
    }

    private static ModelFamilyInfo ClassifyFolder(UnetConfig unet, ClipTextConfig text, VaeConfig vae)
    {
        bool mobile = unet.SharedKvProjection || unet.AttentionActivation != Kernels.Attention.AttentionActivation.Softmax ||
                      unet.FeedForwardActivation != Kernels.Elementwise.GateKind.Geglu || unet.SeparableConvPerBlock.Any(s => s) ||
                      unet.SelfAttentionPerBlock.Any(s => !s) || unet.TimeCondProjDim is not null ||
                      unet.FeedForwardMult != 4 || vae.LatentChannels != 4;
        if (mobile) return new ModelFamilyInfo(ModelFamily.MobileDiffusion, unet.InChannels, "diffusers folder with MobileDiffusion configuration keys");
        if (unet.CrossAttentionDim == 1024) return new ModelFamilyInfo(ModelFamily.StableDiffusion2, unet.InChannels, "cross_attention_dim 1024 (OpenCLIP ViT-H)");
        if (unet.CrossAttentionDim == 2048) return new ModelFamilyInfo(ModelFamily.StableDiffusionXL, unet.InChannels, "cross_attention_dim 2048");
        return new ModelFamilyInfo(ModelFamily.StableDiffusion1, unet.InChannels, $"diffusers folder, cross_attention_dim {unet.CrossAttentionDim}");
    }

    /// <summary>
    /// A component's safetensors: the plain file, the fp16 variant, or the shards listed in an index. Pickled
    /// <c>.bin</c> weights are refused (never unpickled).
    /// </summary>
    private static IReadOnlyList<string> WeightFiles(string dir, string stem)
    {
        foreach (string name in new[] { stem + ".safetensors", stem + ".fp16.safetensors" })
            if (File.Exists(Path.Combine(dir, name))) return [Path.Combine(dir, name)];
        foreach (string name in new[] { stem + ".safetensors.index.json", stem + ".fp16.safetensors.index.json" })
        {
            string index = Path.Combine(dir, name);
            if (!File.Exists(index)) continue;
            using var doc = JsonDocument.Parse(ReadText(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{index}: no \"weight_map\" object.");
            var files = map.EnumerateObject().Select(p => p.Value.GetString() ?? "").Distinct().ToList();
            foreach (string f in files)
                if (f.Length == 0 || f.Contains("..") || Path.IsPathRooted(f)) throw new InvalidDataException($"{index}: invalid shard name '{f}'.");
            return files.Select(f => Path.Combine(dir, f)).ToList();
        }
        if (File.Exists(Path.Combine(dir, stem + ".bin")))
            throw new InvalidDataException($"'{dir}' holds only '{stem}.bin', a PyTorch pickle, which DiffusionSharp never unpickles. Convert it to safetensors.");
        throw new InvalidDataException($"'{dir}' has no '{stem}.safetensors'.");
    }

    private static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"'{path}' is missing.");
        var info = new FileInfo(path);
        if (info.Length > 16 << 20) throw new InvalidDataException($"'{path}' is {info.Length} bytes; a config file should be small.");
        return File.ReadAllText(path);
    }

    // ------------------------------------------------------------------------------------------- build

    private static StableDiffusionModel Build(string source, string name, ModelFamilyInfo family, ClipTokenizer tokenizer,
        IWeightSource? unetSource, QuantizedUnetFile? quantized, UnetConfig unetConfig, IWeightSource textSource, ClipTextConfig textConfig,
        IWeightSource vaeSource, VaeConfig vaeConfig, SchedulerConfig scheduler, ModelDefaults defaults,
        ModelLoadOptions options, IProgress<string>? progress, List<string> warnings, Stopwatch stopwatch)
    {
        ClipTextModel? text = null;
        Unet2DConditionModel? unet = null;
        AutoencoderKL? vae = null;
        try
        {
            progress?.Report("Loading text encoder");
            var textScope = new WeightScope(textSource, precision: options.Precision);
            text = ClipTextModel.Load(textScope, textConfig.Validate(source + " text encoder"));
            progress?.Report(quantized != null ? $"Loading UNet ({quantized.Info.Method}, {Path.GetFileName(quantized.Path)})" : "Loading UNet");
            var unetScope = quantized != null
                ? new WeightScope(quantized.PlainWeights, quantized, options.Precision)
                : new WeightScope(unetSource!, precision: options.Precision);
            unet = Unet2DConditionModel.Load(unetScope, unetConfig.Validate(source + " UNet"));
            quantized?.CheckAllBound();
            progress?.Report("Loading VAE");
            var vaeScope = new WeightScope(vaeSource, precision: options.Precision);
            vae = AutoencoderKL.Load(vaeScope, vaeConfig.Validate(source + " VAE"), options.LoadVaeEncoder);

            ReportUnused(warnings, "UNet", unetScope.UnusedKeys());
            ReportUnused(warnings, "text encoder", textScope.UnusedKeys().Where(k => !k.EndsWith("position_ids", StringComparison.Ordinal)).ToList());
            if (options.LoadVaeEncoder)
                ReportUnused(warnings, "VAE", vaeScope.UnusedKeys());
            return new StableDiffusionModel
            {
                Source = source, Name = name, Family = family, Tokenizer = tokenizer,
                TextEncoder = text, Unet = unet, Vae = vae, Scheduler = scheduler, Defaults = defaults,
                Warnings = warnings, LoadTime = stopwatch.Elapsed,
            };
        }
        catch
        {
            text?.Dispose();
            unet?.Dispose();
            vae?.Dispose();
            throw;
        }
        finally
        {
            WeightScope.ReleaseReadBuffer();
        }
    }

    private static void ReportUnused(List<string> warnings, string component, IReadOnlyList<string> unused)
    {
        if (unused.Count > 0)
            warnings.Add($"{unused.Count} {component} tensors were not used (first: {unused[0]}).");
    }
}
