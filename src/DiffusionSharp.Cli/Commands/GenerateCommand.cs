using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using DiffusionSharp.Caching;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Cli.Commands;

/// <summary><c>diffusion generate</c>: text to PNG, with stable-diffusion.cpp's flags.</summary>
public static class GenerateCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string?>("--model", "-m") { Description = "Model: a single-file .safetensors checkpoint or a diffusers folder. Default: the shipped emoji model." };
        var prompt = new Option<string>("--prompt", "-p") { Description = "What to draw.", Required = true };
        var negative = new Option<string>("--negative-prompt", "-n") { Description = "What to steer away from (classifier-free guidance's unconditional text).", DefaultValueFactory = _ => "" };
        var width = new Option<int?>("--width", "-W") { Description = "Image width in pixels, a multiple of the VAE's factor (8 for SD). Default: the model's (512 for SD 1.x)." };
        var height = new Option<int?>("--height", "-H") { Description = "Image height in pixels. Default: the model's." };
        var steps = new Option<int?>("--steps") { Description = "Sampling steps. Default: the model's (20 for SD 1.x)." };
        var cfg = new Option<double?>("--cfg-scale") { Description = "Classifier-free guidance scale. Default: the model's (7 for SD 1.x)." };
        var sampler = new Option<string?>("--sampling-method", "--sampler") { Description = $"Sampler: {string.Join(", ", SamplerRegistry.All.Select(s => s.Name))}; web-UI labels work too (\"Euler a\", \"DPM++ 2M Karras\"). Default: the model's (euler_a for SD 1.x)." };
        var scheduler = new Option<string?>("--scheduler") { Description = $"Sigma schedule: {string.Join(", ", SchedulerNames.All)}. Default: the sampler's (discrete)." };
        var seed = new Option<long>("--seed", "-s") { Description = "Seed of the first image (image k uses seed + k); -1 picks one at random.", DefaultValueFactory = _ => 42 };
        var outputPath = new Option<string>("--output", "-o") { Description = "PNG file to write; with -b N the others are NAME_2.png, NAME_3.png, ...", DefaultValueFactory = _ => "output.png" };
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads; 0 = all processors.", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch-count", "-b") { Description = "Number of images.", DefaultValueFactory = _ => 1 };
        var rng = new Option<string>("--rng") { Description = "Noise generator: cuda (torch.randn on a GPU, the web UIs' and sd.cpp's default) or cpu (torch's CPU generator).", DefaultValueFactory = _ => "cuda" };
        var clipSkip = new Option<int>("--clip-skip") { Description = "Use the text encoder's N-th last layer (1 = last, SD 1.x's default; 2 = the web UIs' 'Clip skip 2').", DefaultValueFactory = _ => 1 };
        var eta = new Option<double?>("--eta") { Description = "Noise of ancestral and DDIM samplers (default: the sampler's own, 1 for euler_a, 0 for ddim)." };
        var prediction = new Option<string?>("--prediction") { Description = "Override the model's prediction type: eps or v (single files cannot tell)." };
        var modelConfig = new Option<string?>("--model-config") { Description = "A diffusers folder whose unet/, text_encoder/, vae/ config.json describe a single file of non-standard shape." };
        var precision = PrecisionOption();
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Print load and stage timings, warnings and stack traces." };
        var cache = new Option<string?>("--cache") { Description = "Block caching: a schedule file from 'diffusion cache-profile', 'auto' (profile this model, sampler and step count once and keep the schedule beside the model), or 'interval:N' (DeepCache-style: the whole UNet every N steps). Default: none." };
        var cacheThreshold = new Option<double?>("--cache-threshold") { Description = $"The change budget delta of automatic caching (cache auto); larger skips more. Default: {DefaultCacheThreshold.ToString(CultureInfo.InvariantCulture)}." };

        var command = new Command("generate", "Generate images from a text prompt and write them as PNG files with the web UIs' parameters text.")
        {
            model, prompt, negative, width, height, steps, cfg, sampler, scheduler, seed, outputPath, threads, batch, rng,
            clipSkip, eta, prediction, modelConfig, cache, cacheThreshold, precision, verbose,
        };
        // Validators read values only when they parsed: an unparsable token already has its own parse error.
        AtLeast(threads, 0, "--threads must be 0 (all processors) or more.");
        AtLeast(batch, 1, "--batch-count must be at least 1.");
        OneOf(rng, "--rng must be cuda or cpu", "cuda", "cpu", "gpu", "nv");
        OneOf(prediction, "--prediction must be eps or v", "eps", "v");
        cache.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && CacheSpec.Parse(r.Tokens[0].Value) is { Error: { } message }) r.AddError(message);
        });
        cacheThreshold.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && double.TryParse(r.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && !(v >= 0 && double.IsFinite(v)))
                r.AddError($"--cache-threshold must be a number >= 0, not '{r.Tokens[0].Value}'.");
        });
        command.Validators.Add(r =>
        {
            if (r.GetResult(cacheThreshold) is { Implicit: false } && !string.Equals(r.GetValue(cache), "auto", StringComparison.OrdinalIgnoreCase))
                r.AddError("--cache-threshold applies to --cache auto only (a schedule file has its own delta).");
        });

        command.SetAction(parse =>
        {
            bool isVerbose = parse.GetValue(verbose);
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                ThreadScheduler.SetDefaultThreadCount(parse.GetValue(threads));
                string path = parse.GetValue(outputPath)!;
                string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
                if (folder != null && !Directory.Exists(folder))
                    throw new DirectoryNotFoundException($"Output folder '{folder}' does not exist.");

                var request = new GenerationRequest
                {
                    Prompt = parse.GetValue(prompt)!,
                    NegativePrompt = parse.GetValue(negative) ?? "",
                    Width = parse.GetValue(width),
                    Height = parse.GetValue(height),
                    Steps = parse.GetValue(steps),
                    CfgScale = parse.GetValue(cfg),
                    Sampler = parse.GetValue(sampler),
                    Scheduler = parse.GetValue(scheduler),
                    Seed = parse.GetValue(seed),
                    BatchCount = parse.GetValue(batch),
                    Rng = RngTypes.Parse(parse.GetValue(rng)!),
                    ClipSkip = parse.GetValue(clipSkip),
                    Eta = parse.GetValue(eta),
                };
                ResolvedSettings.CheckModelIndependent(request);
                var cacheSpec = parse.GetValue(cache) is { } cacheValue ? CacheSpec.Parse(cacheValue) : null;
                var schedule = cacheSpec?.Path is { } schedulePath ? CacheScheduleFile.Read(schedulePath) : null; // a bad file fails before the weights load
                string modelPath = parse.GetValue(model) ?? DefaultModel.Path;
                var loadOptions = new ModelLoadOptions
                {
                    ConfigFolder = parse.GetValue(modelConfig),
                    Prediction = parse.GetValue(prediction) switch { "eps" => ModelPrediction.Epsilon, "v" => ModelPrediction.VPrediction, _ => null },
                    Precision = parse.GetValue(precision),
                };
                var clock = Stopwatch.StartNew();
                error.WriteLine($"loading {modelPath}");
                using var loaded = ModelLoader.Load(modelPath, loadOptions);
                error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"loaded {loaded.Family.DisplayName} model '{loaded.Name}' in {loaded.LoadTime.TotalSeconds:0.00} s"));
                foreach (string w in loaded.Warnings) error.WriteLine($"warning: {w}");

                var pipeline = new TextToImagePipeline(loaded);
                if (cacheSpec is not null)
                    request = request with { Cache = ResolveCache(cacheSpec, schedule, pipeline, request, parse.GetValue(cacheThreshold) ?? DefaultCacheThreshold, error, cts.Token) };
                var progress = new ConsoleProgress(error, interactive: !Console.IsErrorRedirected);
                GenerationResult result;
                try { result = pipeline.Generate(request, progress, cts.Token); }
                finally { progress.Finish(); }
                foreach (string w in result.Warnings) error.WriteLine($"warning: {w}");

                for (int k = 0; k < result.Images.Count; k++)
                {
                    var image = result.Images[k];
                    string file = OutputName(path, k);
                    PngWriter.Write(file, image.Image, [new(Infotext.ChunkKeyword, image.Parameters)]);
                    output.WriteLine(file);
                    if (isVerbose)
                    {
                        var t = image.Timings;
                        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"seed {image.Seed}: text {t.TextEncoding.TotalSeconds:0.000} s, denoise {t.Denoising.TotalSeconds:0.000} s ({t.UnetEvaluations} UNet calls), decode {t.Decoding.TotalSeconds:0.000} s"));
                        if (image.Cache is { } c)
                            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                                $"seed {image.Seed}: cache skipped {c.BlockSkips}/{c.BlockEvaluations} blocks, {100 * c.SavedFraction:0.0}% of {c.Flops / 1e9:0.##} GFLOP, held {c.CacheBytes / 1048576.0:0.0} MiB"));
                    }
                }
                error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {result.Images.Count} image(s) of {result.Settings.Width}x{result.Settings.Height} in {clock.Elapsed.TotalSeconds:0.00} s"));
                return ExitCodes.Success;
            }
            catch (Exception e)
            {
                return CommandErrors.Report(e, error, isVerbose);
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return command;
    }

    public const double DefaultCacheThreshold = 0.1;

    /// <summary>
    /// The caching policy of a <c>--cache</c> value: <c>interval:N</c>, a schedule file (read and checked against the run
    /// now, before any work; <paramref name="schedule"/> is the file, read before the model loaded), or <c>auto</c> (a stored
    /// schedule, or a profile made and stored now).
    /// </summary>
    private static BlockCaching ResolveCache(CacheSpec spec, CacheSchedule? schedule, TextToImagePipeline pipeline, GenerationRequest request, double threshold,
        TextWriter error, CancellationToken cancellationToken)
    {
        BlockCaching policy;
        if (spec.Interval is { } interval)
        {
            policy = new IntervalCaching(interval);
        }
        else if (spec.Auto)
        {
            var (profiledSchedule, path, profiled) = CacheProfiler.GetOrProfile(pipeline, request, threshold, progress: new ProfileProgress(error),
                cancellationToken: cancellationToken);
            error.WriteLine(profiled ? $"cache: profiled {BuiltInPrompts.All.Count} prompts, schedule stored in {path}" : $"cache: using the stored schedule {path}");
            policy = new ScheduledCaching(profiledSchedule, source: path);
        }
        else
        {
            policy = new ScheduledCaching(schedule!, source: spec.Path!);
        }
        var plan = (CachePlan)policy.Prepare(pipeline.CacheTargetFor(request));
        var expected = plan.Expected;
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cache: {policy.Description}, skips {expected.BlockSkips}/{expected.BlockEvaluations} block runs ({100 * expected.SavedFraction:0.0}% of UNet FLOPs), holds {plan.CacheBytes / 1048576.0:0.0} MiB"));
        return policy;
    }

    /// <summary>A parsed <c>--cache</c> value, or the usage error it makes.</summary>
    private sealed record CacheSpec(bool Auto, int? Interval, string? Path, string? Error)
    {
        public static CacheSpec Parse(string value)
        {
            if (string.Equals(value, "auto", StringComparison.OrdinalIgnoreCase)) return new(true, null, null, null);
            if (value.StartsWith("interval:", StringComparison.OrdinalIgnoreCase))
            {
                string n = value["interval:".Length..];
                return int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int interval) && interval >= 1
                    ? new(false, interval, null, null)
                    : new(false, null, null, $"--cache interval:N needs a whole number N >= 1, not '{n}'.");
            }
            return value.Length == 0 ? new(false, null, null, "--cache needs a schedule file, 'auto' or 'interval:N'.") : new(false, null, value, null);
        }
    }

    /// <summary>Profiling progress for --cache auto: one line per prompt.</summary>
    private sealed class ProfileProgress(TextWriter error) : IProgress<CacheProfileProgress>
    {
        private (int Pass, int Prompt) _last = (-1, -1);

        public void Report(CacheProfileProgress p)
        {
            if ((p.Pass, p.Prompt) == _last) return;
            _last = (p.Pass, p.Prompt);
            error.WriteLine($"cache: profiling pass {p.Pass}/{p.Passes} ({(p.Pass == 1 ? "change curves" : "scale/shift")}), prompt {p.Prompt + 1}/{p.Prompts}");
        }
    }

    /// <summary>Adds a range check that reads the option's token itself, so an unparsable value keeps its parse error.</summary>
    /// <summary>
    /// <c>--precision fp32|fp16|bf16</c>: how the model's GEMM weights are held in memory (<see cref="ModelLoadOptions.Precision"/>).
    /// Shared by <c>generate</c> and <c>bench</c>.
    /// </summary>
    public static Option<WeightPrecision> PrecisionOption() => new("--precision")
    {
        Description = "Weight storage of the linear and convolution layers: fp32, fp16 (half the memory; lossless for fp16 checkpoints) " +
            "or bf16 (half the memory, 8-bit mantissa). Arithmetic is fp32 either way. Default: fp32.",
        DefaultValueFactory = _ => WeightPrecision.Float32,
        CustomParser = r =>
        {
            string text = r.Tokens.Count == 1 ? r.Tokens[0].Value : string.Join(' ', r.Tokens.Select(t => t.Value));
            if (WeightPrecisionExtensions.TryParse(text, out var value)) return value;
            r.AddError($"--precision must be fp32, fp16 or bf16, not '{text}'.");
            return WeightPrecision.Float32;
        },
    };

    private static void AtLeast(Option<int> option, int min, string message) => option.Validators.Add(r =>
    {
        if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v < min)
            r.AddError(message);
    });

    private static void OneOf<T>(Option<T> option, string message, params string[] values) => option.Validators.Add(r =>
    {
        if (r.Tokens.Count == 1 && !values.Contains(r.Tokens[0].Value.ToLowerInvariant()))
            r.AddError($"{message}, not '{r.Tokens[0].Value}'.");
    });

    /// <summary>Image 0 goes to <paramref name="path"/>; image k &gt; 0 to NAME_(k+1).EXT beside it, as sd.cpp names batches.</summary>
    public static string OutputName(string path, int index)
    {
        if (index == 0) return path;
        string ext = Path.GetExtension(path);
        string stem = path[..^ext.Length];
        return $"{stem}_{index + 1}{(ext.Length > 0 ? ext : ".png")}";
    }
}
