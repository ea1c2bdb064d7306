using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using DiffusionSharp.IO.Png;
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
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Print load and stage timings, warnings and stack traces." };

        var command = new Command("generate", "Generate images from a text prompt and write them as PNG files with the web UIs' parameters text.")
        {
            model, prompt, negative, width, height, steps, cfg, sampler, scheduler, seed, outputPath, threads, batch, rng,
            clipSkip, eta, prediction, modelConfig, verbose,
        };
        // Validators read values only when they parsed: an unparsable token already has its own parse error.
        AtLeast(threads, 0, "--threads must be 0 (all processors) or more.");
        AtLeast(batch, 1, "--batch-count must be at least 1.");
        OneOf(rng, "--rng must be cuda or cpu", "cuda", "cpu", "gpu", "nv");
        OneOf(prediction, "--prediction must be eps or v", "eps", "v");

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
                string modelPath = parse.GetValue(model) ?? DefaultModel.Path;
                var loadOptions = new ModelLoadOptions
                {
                    ConfigFolder = parse.GetValue(modelConfig),
                    Prediction = parse.GetValue(prediction) switch { "eps" => ModelPrediction.Epsilon, "v" => ModelPrediction.VPrediction, _ => null },
                };
                var clock = Stopwatch.StartNew();
                error.WriteLine($"loading {modelPath}");
                using var loaded = ModelLoader.Load(modelPath, loadOptions);
                error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"loaded {loaded.Family.DisplayName} model '{loaded.Name}' in {loaded.LoadTime.TotalSeconds:0.00} s"));
                foreach (string w in loaded.Warnings) error.WriteLine($"warning: {w}");

                var pipeline = new TextToImagePipeline(loaded);
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

    /// <summary>Adds a range check that reads the option's token itself, so an unparsable value keeps its parse error.</summary>
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
