using DiffusionSharp.Caching;
using DiffusionSharp.Diagnostics;
using DiffusionSharp.Evaluation;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;
using DiffusionSharp.Threading;
using System.CommandLine.Parsing;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text;

namespace DiffusionSharp.Cli.Commands;

/// <summary>
/// <c>diffusion cache-profile</c>: measures how much every UNet block's residual changes between steps over a prompt
/// set, writes the curves (CSV and PNG) and one cache schedule per threshold, with least-squares scale/shift.
/// <c>diffusion cache-profile compare</c>: generates a prompt set uncached and with each given cache, interleaved in one
/// process, and reports FLOPs skipped, denoising speedup, PSNR and SSIM against the uncached images, and a picture grid.
/// docs/CACHING.md.
/// </summary>
public static class CacheProfileCommand
{
    private static readonly double[] DefaultThresholds = [0.05, 0.1, 0.2];

    public static Command Create(TextWriter output, TextWriter error)
    {
        var o = new SharedOptions();
        var thresholds = new Option<double[]>("--threshold", "--cache-threshold")
        {
            Description = "Change budgets delta to derive schedules for, comma-separated. Default: 0.05,0.1,0.2.",
            CustomParser = ParseThresholds, DefaultValueFactory = _ => DefaultThresholds,
        };
        var noScaleShift = new Option<bool>("--no-scale-shift") { Description = "Skip the second pass that fits the per-channel scale/shift corrections." };
        var command = new Command("cache-profile",
            "Measure each UNet block's change between denoising steps over a prompt set; write the change curves " +
            "(curves.csv, curves.png) and a block-caching schedule per threshold for 'generate --cache'. " +
            "'cache-profile compare' measures what schedules cost and save.")
        {
            thresholds, noScaleShift, CreateCompare(output, error, o),
        };
        o.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(error, parse.GetValue(o.Verbose), cancellationToken =>
        {
            var (pipeline, loaded, prompts, template, folder) = o.Open(parse, error);
            using (loaded)
            {
                var deltas = parse.GetValue(thresholds)!;
                bool fit = !parse.GetValue(noScaleShift);
                error.WriteLine($"profiling {prompts.Count} prompts{(fit ? ", two passes (change curves, then scale/shift)" : "")}");
                var profile = CacheProfiler.Profile(pipeline, template, prompts, deltas, fit, new ProfileLines(error), cancellationToken);
                var target = pipeline.CacheTargetFor(template);
                var scheduleTarget = target.ScheduleTarget();

                Directory.CreateDirectory(folder);
                File.WriteAllText(Path.Combine(folder, "curves.csv"), profile.Curves.ToCsv());
                PngWriter.Write(Path.Combine(folder, "curves.png"), ChangeCurvePlot.Render(profile.Curves));
                output.WriteLine(Path.Combine(folder, "curves.csv"));
                output.WriteLine(Path.Combine(folder, "curves.png"));
                var table = new StringBuilder("| delta | block runs skipped | UNet FLOPs skipped | cache memory | schedule |\n|---|---|---|---|---|\n");
                for (int i = 0; i < deltas.Length; i++)
                {
                    var schedule = profile.Schedules[i];
                    string file = Path.Combine(folder, CacheScheduleStore.FileName(scheduleTarget, deltas[i]));
                    CacheScheduleFile.Write(file, schedule);
                    string plot = Path.Combine(folder, Path.ChangeExtension(Path.GetFileName(file), ".png"));
                    PngWriter.Write(plot, ChangeCurvePlot.Render(profile.Curves, schedule));
                    output.WriteLine(file);
                    output.WriteLine(plot);
                    var plan = (CachePlan)new ScheduledCaching(schedule, source: file).Prepare(target);
                    var e = plan.Expected;
                    table.Append(CultureInfo.InvariantCulture,
                        $"| {deltas[i]:0.###} | {e.BlockSkips}/{e.BlockEvaluations} | {100 * e.SavedFraction:0.0}% | {plan.CacheBytes / 1048576.0:0.00} MiB | {Path.GetFileName(file)} |\n");
                }
                error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"profiled in {profile.Elapsed.TotalSeconds:0.0} s"));
                error.Write(table.ToString());
            }
        }));
        return command;
    }

    private static Command CreateCompare(TextWriter output, TextWriter error, SharedOptions o)
    {
        var caches = new Option<string[]>("--cache")
        {
            Description = "A cache to compare with the uncached run: a schedule file (measured with and without its scale/shift when it has one) or interval:N. Repeatable.",
            Required = true, AllowMultipleArgumentsPerToken = false,
        };
        var repeats = new Option<int>("--repeats", "-r")
        {
            Description = "Timed runs of every prompt under every cache, interleaved. Default: 3.", DefaultValueFactory = _ => 3,
            CustomParser = r => OptionParsing.Int(r, 1, 100, "--repeats must be between 1 and 100") ?? 3,
        };
        var grid = new Option<int>("--grid")
        {
            Description = "Prompts shown in grid.png (uncached and each cache, one row each). Default: 8; 0 for none.", DefaultValueFactory = _ => 8,
            CustomParser = r => OptionParsing.Int(r, 0, 64, "--grid must be between 0 and 64") ?? 8,
        };
        var command = new Command("compare",
            "Generate the prompt set uncached and with each --cache, interleaved in this process; write every image, grid.png and " +
            "results.json, and print FLOPs skipped, denoising speedup, PSNR and SSIM against the uncached images.")
        {
            caches, repeats, grid,
        };
        command.SetAction(parse => CommandErrors.Run(error, parse.GetValue(o.Verbose), cancellationToken =>
        {
            var (pipeline, loaded, prompts, template, folder) = o.Open(parse, error);
            using (loaded)
            {
                var variants = new List<Variant> { new("uncached", null) };
                foreach (string spec in parse.GetValue(caches)!) variants.AddRange(Variants(spec));
                var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                foreach (var v in variants)
                    if (!names.Add(v.Name)) throw new InvalidSettingException($"Two caches are named '{v.Name}'; give the schedule files different names.", "cache");
                var target = pipeline.CacheTargetFor(template);
                foreach (var v in variants.Skip(1)) v.Plan = (CachePlan)v.Caching!.Prepare(target);
                foreach (var v in variants) Directory.CreateDirectory(Path.Combine(folder, v.Name));
                var comparison = Compare(pipeline, template, prompts, variants, parse.GetValue(repeats), parse.GetValue(grid), folder, error, cancellationToken);
                File.WriteAllText(Path.Combine(folder, "results.json"), comparison.Json);
                File.WriteAllText(Path.Combine(folder, "results.md"), comparison.Markdown);
                output.Write(comparison.Markdown);
                output.WriteLine(Path.Combine(folder, "results.json"));
                if (comparison.Grid is { } g)
                {
                    PngWriter.Write(Path.Combine(folder, "grid.png"), g);
                    output.WriteLine(Path.Combine(folder, "grid.png"));
                }
            }
        }));
        return command;
    }

    /// <summary>One run being compared: its folder name, policy and (once prepared) plan, and what it measured.</summary>
    private sealed class Variant(string name, BlockCaching? caching)
    {
        public string Name { get; } = name;
        public BlockCaching? Caching { get; } = caching;
        public CachePlan? Plan { get; set; }
        public double DenoiseSeconds { get; set; }
        public List<double> Psnr { get; } = [];
        public List<double> Ssim { get; } = [];
        public List<RgbImage> GridImages { get; } = [];
    }

    private static IEnumerable<Variant> Variants(string spec)
    {
        if (spec.StartsWith("interval:", StringComparison.OrdinalIgnoreCase))
        {
            string n = spec["interval:".Length..];
            if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int interval) || interval < 1)
                throw new InvalidSettingException($"--cache interval:N needs a whole number N >= 1, not '{n}'.", "cache");
            yield return new Variant($"interval{interval}", new IntervalCaching(interval));
            yield break;
        }
        var schedule = CacheScheduleFile.Read(spec);
        string stem = Path.GetFileNameWithoutExtension(spec);
        yield return new Variant(stem, new ScheduledCaching(schedule, useScaleShift: true, source: spec));
        if (schedule.HasScaleShift) yield return new Variant(stem + ".no-scale-shift", new ScheduledCaching(schedule, useScaleShift: false, source: spec));
    }

    private sealed record Comparison(string Markdown, string Json, RgbImage? Grid);

    /// <summary>
    /// Every prompt under every variant, <paramref name="repeats"/> times; the variants' order rotates from one run to the
    /// next so none is always first after another. The first run's images are written and compared with the uncached one.
    /// </summary>
    private static Comparison Compare(TextToImagePipeline pipeline, GenerationRequest template, IReadOnlyList<SeededPrompt> prompts,
        List<Variant> variants, int repeats, int gridCount, string folder, TextWriter error, CancellationToken cancellationToken)
    {
        double? loadBefore = CpuInfo.LoadAverage();
        var clock = Stopwatch.StartNew();
        pipeline.Generate(Request(template, prompts[0], null), null, cancellationToken); // warm-up: JIT, caches
        int turn = 0;
        for (int p = 0; p < prompts.Count; p++)
        {
            var images = new RgbImage?[variants.Count];
            for (int r = 0; r < repeats; r++)
            {
                for (int k = 0; k < variants.Count; k++)
                {
                    int v = (k + turn) % variants.Count;
                    var result = pipeline.Generate(Request(template, prompts[p], variants[v].Caching), null, cancellationToken);
                    var image = result.Images[0];
                    variants[v].DenoiseSeconds += image.Timings.Denoising.TotalSeconds;
                    if (r == 0)
                    {
                        images[v] = image.Image;
                        PngWriter.Write(Path.Combine(folder, variants[v].Name, prompts[p].File!), image.Image, [new(Infotext.ChunkKeyword, image.Parameters)]);
                    }
                }
                turn++;
            }
            for (int v = 0; v < variants.Count; v++)
            {
                variants[v].Psnr.Add(ImageMetrics.Psnr(images[0]!, images[v]!));
                variants[v].Ssim.Add(ImageMetrics.Ssim(images[0]!, images[v]!));
                if (p < gridCount) variants[v].GridImages.Add(images[v]!);
            }
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"compared prompt {p + 1}/{prompts.Count} ({clock.Elapsed.TotalSeconds:0} s)"));
        }
        double? loadAfter = CpuInfo.LoadAverage();
        return Summarize(pipeline, template, prompts.Count, variants, repeats, loadBefore, loadAfter, gridCount);
    }

    private static GenerationRequest Request(GenerationRequest template, SeededPrompt prompt, BlockCaching? caching)
        => template with { Prompt = prompt.Prompt, NegativePrompt = prompt.NegativePrompt, Seed = prompt.Seed, BatchCount = 1, Cache = caching };

    private static Comparison Summarize(TextToImagePipeline pipeline, GenerationRequest template, int prompts, List<Variant> variants, int repeats,
        double? loadBefore, double? loadAfter, int gridCount)
    {
        var c = CultureInfo.InvariantCulture;
        var settings = ResolvedSettings.Resolve(template with { Prompt = "" }, pipeline.Model);
        double baseline = variants[0].DenoiseSeconds;
        var md = new StringBuilder();
        md.Append(c, $"{pipeline.Model.Name}, {settings.Sampler.Name} {SchedulerNamesOf(settings)}, {settings.Steps} steps, {settings.Width}x{settings.Height}, ");
        md.Append(c, $"CFG {settings.CfgScale}, {prompts} prompts x {repeats} runs; load average {Format(loadBefore)} -> {Format(loadAfter)}\n\n");
        md.Append("| cache | block runs skipped | UNet FLOPs skipped | denoise s (sum) | speedup | PSNR dB mean (min) | SSIM mean (min) | cache MiB |\n");
        md.Append("|---|---|---|---|---|---|---|---|\n");
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("model", pipeline.Model.Name);
            json.WriteString("sampler", settings.Sampler.Name);
            json.WriteString("scheduler", SchedulerNamesOf(settings));
            json.WriteNumber("steps", settings.Steps);
            json.WriteNumber("width", settings.Width);
            json.WriteNumber("height", settings.Height);
            json.WriteNumber("cfg_scale", settings.CfgScale);
            json.WriteNumber("prompts", prompts);
            json.WriteNumber("repeats", repeats);
            if (loadBefore is { } lb) json.WriteNumber("load_average_before", lb);
            if (loadAfter is { } la) json.WriteNumber("load_average_after", la);
            json.WriteStartArray("caches");
            foreach (var v in variants)
            {
                var expected = v.Plan?.Expected ?? CacheStatistics.None;
                double speedup = baseline / v.DenoiseSeconds;
                double psnrMean = v.Psnr.Average(x => Math.Min(x, 100)), ssimMean = v.Ssim.Average();
                md.Append(c, $"| {v.Name} | {expected.BlockSkips}/{Math.Max(expected.BlockEvaluations, 0)} | {100 * expected.SavedFraction:0.0}% | {v.DenoiseSeconds:0.00} | {speedup:0.00}x | ");
                md.Append(v.Plan is null ? "- | - | - |\n" : string.Create(c, $"{psnrMean:0.00} ({v.Psnr.Min():0.00}) | {ssimMean:0.0000} ({v.Ssim.Min():0.0000}) | {v.Plan.CacheBytes / 1048576.0:0.00} |\n"));
                json.WriteStartObject();
                json.WriteString("name", v.Name);
                json.WriteString("description", v.Caching?.Description ?? "uncached");
                json.WriteNumber("block_runs_skipped", expected.BlockSkips);
                json.WriteNumber("block_runs", expected.BlockEvaluations);
                json.WriteNumber("unet_flops", v.Plan?.Expected.Flops ?? (long)pipeline.Model.Unet.FlopsPerForward(settings.Height / pipeline.Model.LatentScale, settings.Width / pipeline.Model.LatentScale) * settings.Steps);
                json.WriteNumber("unet_flops_skipped", expected.FlopsSaved);
                json.WriteNumber("denoise_seconds", v.DenoiseSeconds);
                json.WriteNumber("speedup", speedup);
                json.WriteNumber("psnr_mean_db", psnrMean);
                json.WriteNumber("psnr_min_db", Math.Min(v.Psnr.Min(), 100));
                json.WriteNumber("ssim_mean", ssimMean);
                json.WriteNumber("ssim_min", v.Ssim.Min());
                json.WriteNumber("cache_bytes", v.Plan?.CacheBytes ?? 0);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        md.Append("\nPSNR of identical images counts as 100 dB; speedup = uncached denoising time / this cache's, summed over all runs.\n");
        var grid = gridCount > 0 ? ImageGrid.Compose(variants.Select(v => (v.Name, (IReadOnlyList<RgbImage>)v.GridImages)).ToArray(), 64) : null;
        return new Comparison(md.ToString(), Encoding.UTF8.GetString(stream.ToArray()) + "\n", grid);
    }

    private static string SchedulerNamesOf(ResolvedSettings settings) => Sampling.SchedulerNames.Name(settings.Scheduler);

    private static string Format(double? load) => load is { } l ? l.ToString("0.0", CultureInfo.InvariantCulture) : "n/a";

    /// <summary>The options both commands take: model, prompt set, sampling settings, output folder, threads.</summary>
    private sealed class SharedOptions
    {
        public Option<string?> Model { get; } = new("--model", "-m") { Description = "Model: a single-file .safetensors checkpoint or a diffusers folder. Default: the shipped emoji model.", Recursive = true };
        public Option<string> Prompts { get; } = new("--prompts") { Description = "Prompt file: one prompt per line, or a .json list of {\"prompt\", \"seed\", \"file\"} (tools/train/evaluate.py prompts).", Required = true, Recursive = true };
        public Option<int?> Steps { get; } = new("--steps") { Description = "Sampling steps. Default: the model's.", Recursive = true, CustomParser = r => OptionParsing.Int(r, 1, 1000, "--steps must be between 1 and 1000") };
        public Option<string?> Sampler { get; } = new("--sampling-method", "--sampler") { Description = "Sampler (as for generate). Default: the model's.", Recursive = true };
        public Option<string?> Scheduler { get; } = new("--scheduler") { Description = "Sigma schedule. Default: the sampler's.", Recursive = true };
        public Option<double?> Cfg { get; } = new("--cfg-scale") { Description = "Guidance scale. Default: the model's.", Recursive = true };
        public Option<int?> Width { get; } = new("--width", "-W") { Description = "Image width. Default: the model's.", Recursive = true, CustomParser = r => OptionParsing.Int(r, 1, 8192, "--width must be a pixel count from 1 to 8192") };
        public Option<int?> Height { get; } = new("--height", "-H") { Description = "Image height. Default: the model's.", Recursive = true, CustomParser = r => OptionParsing.Int(r, 1, 8192, "--height must be a pixel count from 1 to 8192") };
        public Option<long> Seed { get; } = new("--seed", "-s") { Description = "Seed of the first prompt of a text prompt file (prompt k uses seed + k). Default: 0.", DefaultValueFactory = _ => 0, Recursive = true };
        public Option<string> Rng { get; } = new("--rng") { Description = "Noise generator: cuda or cpu (as for generate). Default: cuda.", DefaultValueFactory = _ => "cuda", Recursive = true };
        public Option<string> Output { get; } = new("--output", "-o") { Description = "Folder to write into (created). Default: cache-profile.", DefaultValueFactory = _ => "cache-profile", Recursive = true };
        public Option<int> Threads { get; } = new("--threads", "-t") { Description = "Compute threads; 0 = all processors.", DefaultValueFactory = _ => 0, Recursive = true, CustomParser = r => OptionParsing.Int(r, 0, 1024, "--threads must be 0 (all processors) or a thread count up to 1024") ?? 0 };
        public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Stack traces on errors.", Recursive = true };

        public void AddTo(Command command)
        {
            foreach (Option option in new Option[] { Model, Prompts, Steps, Sampler, Scheduler, Cfg, Width, Height, Seed, Rng, Output, Threads, Verbose })
                command.Options.Add(option);
            Rng.Validators.Add(r =>
            {
                if (r.Tokens.Count == 1 && r.Tokens[0].Value.ToLowerInvariant() is not ("cuda" or "cpu" or "gpu" or "nv"))
                    r.AddError($"--rng must be cuda or cpu, not '{r.Tokens[0].Value}'.");
            });
        }

        /// <summary>Checks the settings, reads the prompts, loads the model: what both commands start with.</summary>
        public (TextToImagePipeline Pipeline, IDisposable Model, IReadOnlyList<SeededPrompt> Prompts, GenerationRequest Template, string Folder) Open(ParseResult parse, TextWriter error)
        {
            ThreadScheduler.SetDefaultThreadCount(parse.GetValue(Threads));
            var template = new GenerationRequest
            {
                Prompt = "",
                Steps = parse.GetValue(Steps),
                CfgScale = parse.GetValue(Cfg),
                Sampler = parse.GetValue(Sampler),
                Scheduler = parse.GetValue(Scheduler),
                Width = parse.GetValue(Width),
                Height = parse.GetValue(Height),
                Rng = RngTypes.Parse(parse.GetValue(Rng)!),
            };
            ResolvedSettings.CheckModelIndependent(template);
            var prompts = PromptSet.Read(parse.GetValue(Prompts)!, parse.GetValue(Seed));
            string modelPath = parse.GetValue(Model) ?? DefaultModel.Path;
            error.WriteLine($"loading {modelPath}");
            var loaded = ModelLoader.Load(modelPath);
            try
            {
                var pipeline = new TextToImagePipeline(loaded);
                ResolvedSettings.Resolve(template, loaded);
                return (pipeline, loaded, prompts, template, parse.GetValue(Output)!);
            }
            catch
            {
                loaded.Dispose();
                throw;
            }
        }
    }

    /// <summary>One line per prompt and pass on stderr.</summary>
    private sealed class ProfileLines(TextWriter error) : IProgress<CacheProfileProgress>
    {
        private (int, int) _last = (-1, -1);

        public void Report(CacheProfileProgress p)
        {
            if ((p.Pass, p.Prompt) == _last) return;
            _last = (p.Pass, p.Prompt);
            error.WriteLine($"pass {p.Pass}/{p.Passes} ({(p.Pass == 1 ? "change curves" : "scale/shift")}): prompt {p.Prompt + 1}/{p.Prompts}");
        }
    }

    private static double[] ParseThresholds(ArgumentResult result)
    {
        var values = new List<double>();
        foreach (var token in result.Tokens)
            foreach (string part in token.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d >= 0 && double.IsFinite(d)) values.Add(d);
                else result.AddError($"--threshold takes numbers >= 0 separated by commas, not '{part}'.");
            }
        if (values.Count == 0 && result.Tokens.Count > 0) result.AddError("--threshold needs at least one number.");
        return values.Distinct().ToArray();
    }
}
