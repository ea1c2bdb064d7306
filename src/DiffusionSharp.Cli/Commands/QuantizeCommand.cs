using DiffusionSharp.Evaluation;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Quantization;
using DiffusionSharp.Threading;
using System.CommandLine.Parsing;
using System.CommandLine;
using System.Globalization;

namespace DiffusionSharp.Cli.Commands;

/// <summary>
/// <c>diffusion quantize</c>: calibrate a model and write a quantized UNet (SVDQuant W4A4 or a baseline), or with
/// <c>--report</c> compare quantized UNets with the fp32 model on a prompt list (docs/QUANTIZATION.md).
/// </summary>
public static class QuantizeCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string?>("--model", "-m") { Description = "Model to quantize: a single-file .safetensors checkpoint or a diffusers folder. Default: the shipped model." };
        var method = new Option<string>("--method") { Description = $"Algorithm: {string.Join(", ", QuantizationMethods.All)}.", DefaultValueFactory = _ => QuantizationMethods.SvdQuant };
        var rank = new Option<int>("--rank") { Description = "Rank of the 16-bit low-rank branch (svdquant).", DefaultValueFactory = _ => 32, CustomParser = r => OptionParsing.Int(r, 1, 1024, "--rank must be from 1 to 1024") ?? 32 };
        var group = new Option<int>("--group") { Description = "Inputs per scale group of the 4-bit weights and activations (a multiple of 16 up to 256).", DefaultValueFactory = _ => 64, CustomParser = r => OptionParsing.Int(r, 16, 256, "--group must be from 16 to 256") ?? 64 };
        var calib = new Option<string?>("--calib") { Description = "Calibration prompts: a text file (one per line) or a JSON list of {prompt, seed}." };
        var calibSteps = new Option<int?>("--calib-steps") { Description = "Sampling steps per calibration image. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 1, 1000, "--calib-steps must be from 1 to 1000") };
        var calibSamples = new Option<int>("--calib-samples") { Description = "Input rows kept per layer for the smoothing search.", DefaultValueFactory = _ => 256, CustomParser = r => OptionParsing.Int(r, 1, 65536, "--calib-samples must be from 1 to 65536") ?? 256 };
        var width = new Option<int?>("--width", "-W") { Description = "Calibration (and report) image width. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 8, 8192, "--width must be from 8 to 8192") };
        var height = new Option<int?>("--height", "-H") { Description = "Calibration (and report) image height. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 8, 8192, "--height must be from 8 to 8192") };
        var alpha = new Option<double?>("--alpha") { Description = "Fixed smoothing strength in [0, 1] instead of the per-layer search (lambda = max|X|^a / max|W|^(1-a))." };
        var alphaSteps = new Option<int>("--alpha-steps") { Description = "Grid of the smoothing search: alpha = 1/N..(N-1)/N with beta = 1 - alpha and 0, plus no smoothing.", DefaultValueFactory = _ => 20, CustomParser = r => OptionParsing.Int(r, 2, 100, "--alpha-steps must be from 2 to 100") ?? 20 };
        var iterations = new Option<int>("--lowrank-iters") { Description = "Rounds of the alternating low-rank / residual refinement (1: plain SVD split).", DefaultValueFactory = _ => 4, CustomParser = r => OptionParsing.Int(r, 1, 100, "--lowrank-iters must be from 1 to 100") ?? 4 };
        var gptq = new Option<bool>("--gptq") { Description = "Quantize the int4 residual with GPTQ (error-compensating rounding on the calibration inputs) instead of round-to-nearest (svdquant, w4a4-smooth). Costs O(K^3) per layer at quantization time; nothing at run time." };
        var activations = new Option<string>("--activations") { Description = "How W4A4 activations are coded per group at run time: symmetric (the paper's: [-7, 7] times max|x|/7) or asymmetric (16 levels over [min, max], a zero point through the low-rank branch).", DefaultValueFactory = _ => "symmetric" };
        activations.AcceptOnlyFromAmong("symmetric", "asymmetric");
        var keep = new Option<string[]>("--keep") { Description = $"Layer-key pattern ('*' = any text) of a layer that stays 16-bit; repeatable. Default: {string.Join(" ", ModelQuantizerOptions.DefaultKeep)}.", AllowMultipleArgumentsPerToken = false };
        var plain = new Option<string[]>("--plain") { Description = "Layer-key pattern of a layer that svdquant / w4a4-smooth quantize without smoothing or low-rank branch (plain W4A4); repeatable." };
        var outputPath = new Option<string?>("--output", "-o") { Description = "The quantized UNet file to write (a .safetensors file); with --report, the report folder." };
        var report = new Option<bool>("--report") { Description = "Compare quantized UNets (--variant) with the fp32 model on --prompts instead of quantizing." };
        var prompts = new Option<string?>("--prompts") { Description = "Report prompts: a text file or the JSON list tools/train/evaluate.py writes (file names, seeds)." };
        var variants = new Option<string[]>("--variant") { Description = "A quantized UNet file to compare; repeatable." };
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads; 0 = all processors.", DefaultValueFactory = _ => 0, CustomParser = r => OptionParsing.Int(r, 0, 1024, "--threads must be 0 or more") ?? 0 };
        var modelConfig = new Option<string?>("--model-config") { Description = "A diffusers folder with config.json files for a single file of non-standard shape." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Stack traces on errors." };
        method.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !QuantizationMethods.All.Contains(r.Tokens[0].Value))
                r.AddError($"--method must be one of {string.Join(", ", QuantizationMethods.All)}, not '{r.Tokens[0].Value}'.");
        });
        alpha.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && double.TryParse(r.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double a) && !(a >= 0 && a <= 1))
                r.AddError($"--alpha must be in [0, 1], not '{r.Tokens[0].Value}'.");
        });

        var command = new Command("quantize",
            "Quantize a model's UNet to 4 bits (SVDQuant W4A4: smoothing, a 16-bit low-rank branch, int4 residual) or a baseline " +
            "(w4a4-smooth, w4a4-naive, w8a8, nf4) after calibrating on prompts; or, with --report, measure quantized UNets against fp32.")
        {
            model, method, rank, group, calib, calibSteps, calibSamples, width, height, alpha, alphaSteps, iterations, gptq, activations, keep, plain,
            outputPath, report, prompts, variants, threads, modelConfig, verbose,
        };
        command.SetAction(parse =>
        {
            bool isVerbose = parse.GetValue(verbose);
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                ThreadScheduler.SetDefaultThreadCount(parse.GetValue(threads));
                string modelPath = parse.GetValue(model) ?? DefaultModel.Path;
                var load = new ModelLoadOptions { ConfigFolder = parse.GetValue(modelConfig) };
                string? outPath = parse.GetValue(outputPath);
                if (parse.GetValue(report))
                {
                    string promptFile = parse.GetValue(prompts) ?? throw new UsageException("--report needs --prompts FILE.");
                    var files = parse.GetValue(variants) ?? [];
                    if (files.Length == 0) throw new UsageException("--report needs at least one --variant FILE.");
                    if (outPath == null) throw new UsageException("--report needs --output FOLDER.");
                    foreach (string f in files)
                        if (!File.Exists(f)) throw new FileNotFoundException($"Quantized UNet '{f}' does not exist.", f);
                    var rows = QualityReport.Run(new QualityReportOptions
                    {
                        ModelPath = modelPath, Load = load, Prompts = PromptSet.Read(promptFile), Variants = files, OutputFolder = outPath,
                    }, error, cts.Token);
                    output.Write(File.ReadAllText(Path.Combine(outPath, "report.md")));
                    return ExitCodes.Success;
                }
                string methodName = parse.GetValue(method)!;
                if (parse.GetValue(gptq) && methodName is not (QuantizationMethods.SvdQuant or QuantizationMethods.W4A4Smooth))
                    throw new UsageException($"--gptq applies to svdquant and w4a4-smooth, not {methodName}.");
                if (parse.GetValue(activations) == "asymmetric" && methodName is QuantizationMethods.W8A8 or QuantizationMethods.Nf4)
                    throw new UsageException($"--activations asymmetric applies to the W4A4 methods, not {methodName}.");
                string calibFile = parse.GetValue(calib) ?? throw new UsageException("quantize needs --calib FILE (calibration prompts).");
                if (outPath == null) throw new UsageException("quantize needs --output FILE.");
                string? folder = Path.GetDirectoryName(Path.GetFullPath(outPath));
                if (folder != null && !Directory.Exists(folder)) throw new DirectoryNotFoundException($"Output folder '{folder}' does not exist.");
                var keepPatterns = parse.GetValue(keep) is { Length: > 0 } k ? k : ModelQuantizerOptions.DefaultKeep;
                var options = new ModelQuantizerOptions
                {
                    ModelPath = modelPath,
                    Load = load,
                    Layer = new LayerQuantizerSettings
                    {
                        Method = parse.GetValue(method)!, Rank = parse.GetValue(rank), GroupSize = parse.GetValue(group),
                        Alpha = parse.GetValue(alpha), AlphaSteps = parse.GetValue(alphaSteps), LowRankIterations = parse.GetValue(iterations),
                        Gptq = parse.GetValue(gptq), AsymmetricActivations = parse.GetValue(activations) == "asymmetric",
                    },
                    CalibrationPrompts = PromptSet.Read(calibFile),
                    CalibrationSteps = parse.GetValue(calibSteps),
                    Width = parse.GetValue(width),
                    Height = parse.GetValue(height),
                    SamplesPerLayer = parse.GetValue(calibSamples),
                    Keep = keepPatterns,
                    Plain = parse.GetValue(plain) ?? [],
                    OutputPath = outPath,
                };
                if (options.Layer.GroupSize % 16 != 0) throw new UsageException("--group must be a multiple of 16.");
                var result = ModelQuantizer.Run(options, new Progress(error), cts.Token);
                output.WriteLine(result.OutputPath);
                error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {result.Layers.Count} quantized layers ({result.KeptLayers} kept 16-bit), {result.FileBytes / 1048576.0:0.0} MiB; " +
                    $"calibration {result.CalibrationTime.TotalSeconds:0.0} s, quantization {result.QuantizationTime.TotalSeconds:0.0} s"));
                return ExitCodes.Success;
            }
            catch (UsageException e)
            {
                error.WriteLine($"error: {e.Message} (see 'diffusion quantize --help')");
                return ExitCodes.Usage;
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

    /// <summary>A combination of options that does not make sense (exit code 2, like a parse error).</summary>
    private sealed class UsageException(string message) : Exception(message);

    /// <summary>One line per calibration image and per quantized layer: "[12/57] key: choice, error".</summary>
    private sealed class Progress(TextWriter error) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress p)
        {
            switch (p.Stage)
            {
                case "calibrating": error.WriteLine($"calibrating [{p.Done + 1}/{p.Total}] {p.Detail}"); break;
                case "quantized": error.WriteLine($"quantized [{p.Done}/{p.Total}] {p.Detail}"); break;
                case "writing": error.WriteLine($"writing {p.Detail}"); break;
            }
        }
    }
}
