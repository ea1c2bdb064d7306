using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DiffusionSharp.Cli.Bench;
using DiffusionSharp.Models.Checkpoints;

namespace DiffusionSharp.Cli.Commands;

/// <summary>
/// <c>diffusion bench</c>: how fast this machine runs a model (<c>bench -m MODEL</c>, the default), its kernels
/// (<c>bench ops</c>) and its ceilings (<c>bench peak</c>). A readable table on stdout, or one JSON object with
/// <c>--json</c> (field names documented in docs/BENCHMARKS.md); progress on stderr.
/// </summary>
public static class BenchCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var threads = new Option<int>("--threads", "-t")
        {
            Description = "Compute threads; 0 = all processors.", DefaultValueFactory = _ => 0, Recursive = true,
            CustomParser = r => OptionParsing.Int(r, 0, 1024, "--threads must be 0 (all processors) or a thread count up to 1024") ?? 0,
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (stable field names, see docs/BENCHMARKS.md) instead of a table.", Recursive = true };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Stack traces on errors.", Recursive = true };

        var model = new Option<string?>("--model", "-m") { Description = "Model to time: a single-file .safetensors checkpoint or a diffusers folder. Default: the shipped model." };
        var width = new Option<int?>("--width", "-W") { Description = "Image width in pixels. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 1, 8192, "--width must be a pixel count from 1 to 8192") };
        var height = new Option<int?>("--height", "-H") { Description = "Image height in pixels. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 1, 8192, "--height must be a pixel count from 1 to 8192") };
        var steps = new Option<int?>("--steps") { Description = $"Steps of the timed denoising loop. Default: the model's, at most {ModelBenchmark.DefaultStepCap}.", CustomParser = r => OptionParsing.Int(r, 1, 1000, "--steps must be between 1 and 1000") };
        var repeats = Repeats(3, "Timed runs of the text encoder and of the UNet step, each after a warm-up; the median counts.");
        var modelConfig = new Option<string?>("--model-config") { Description = "A diffusers folder with config.json files for a single file of non-standard shape." };
        var quant = new Option<string?>("--quant") { Description = "A quantized UNet file (diffusion quantize) to time instead of the model's own UNet." };
        var precision = GenerateCommand.PrecisionOption();
        var profile = new Option<bool>("--profile")
        {
            Description = "Also run as many more UNet steps as the timed repeats under a profiler: time and GFLOP/s per kind of operation (linear, convolution, attention, norms) and its costliest shapes.",
        };

        var command = new Command("bench",
            "Time a model: load, text encoder, one UNet step (GFLOP/s and % of the measured FMA peak), a denoising loop, " +
            "VAE decode, peak memory and managed allocations per step. 'bench ops' times the kernels, 'bench peak' the machine.")
        {
            threads, json, verbose, model, width, height, steps, repeats, modelConfig, quant, precision, profile,
            CreatePeak(output, error, threads, json, verbose),
            CreateOps(output, error, threads, json, verbose),
            CreateFusions(output, error, threads, json, verbose),
        };
        command.SetAction(parse => CommandErrors.Run(error, parse.GetValue(verbose), cancellationToken =>
        {
            var options = new ModelBenchOptions
            {
                ModelPath = parse.GetValue(model) ?? DefaultModel.Path,
                Load = new ModelLoadOptions
                {
                    ConfigFolder = parse.GetValue(modelConfig), QuantizedUnet = parse.GetValue(quant), Precision = parse.GetValue(precision),
                },
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Steps = parse.GetValue(steps),
                Threads = ThreadCount(parse.GetValue(threads)),
                Repeats = parse.GetValue(repeats),
                Profile = parse.GetValue(profile),
            };
            var progress = new ConsoleProgress(error, interactive: !Console.IsErrorRedirected);
            ModelBenchmark result;
            try { result = ModelBenchmark.Run(options, error, progress, cancellationToken); }
            finally { progress.Finish(); }
            if (parse.GetValue(json)) BenchFormat.WriteJson(output, result.ToJson());
            else result.WriteTable(output);
        }));
        return command;
    }

    private static Command CreatePeak(TextWriter output, TextWriter error, Option<int> threads, Option<bool> json, Option<bool> verbose)
    {
        var command = new Command("peak", "Measure the machine's fp32 FMA throughput and memory bandwidth (triad) on 1 and N threads.");
        command.SetAction(parse => CommandErrors.Run(error, parse.GetValue(verbose), _ =>
        {
            var result = PeakBenchmark.Run(ThreadCount(parse.GetValue(threads)), error);
            if (parse.GetValue(json)) BenchFormat.WriteJson(output, result.ToJson());
            else result.WriteTable(output);
        }));
        return command;
    }

    private static Command CreateOps(TextWriter output, TextWriter error, Option<int> threads, Option<bool> json, Option<bool> verbose)
    {
        var repeats = Repeats(5, "Timed runs of each kernel after a warm-up; the best counts.");
        var quant = new Option<bool>("--quant") { Description = "Also time the quantized layers (W4A4 with and without the rank-32 branch, W8A8, NF4) against the int8 ceiling." };
        var precision = GenerateCommand.PrecisionOption();
        precision.Description = "fp16 or bf16: also time the GEMM shapes with 16-bit weight panels, beside their fp32 rows. Default: fp32 (no extra rows).";
        var command = new Command("ops",
            "Time the main kernels at Stable Diffusion 1.5 shapes (GEMMs, 3x3 convolutions, self-attention, GroupNorm+SiLU) " +
            "as GFLOP/s or GB/s and % of the ceilings measured in the same process.")
        {
            repeats, quant, precision,
        };
        command.SetAction(parse => CommandErrors.Run(error, parse.GetValue(verbose), cancellationToken =>
        {
            var result = OpsBenchmark.Run(ThreadCount(parse.GetValue(threads)), parse.GetValue(repeats), error, cancellationToken, parse.GetValue(quant),
                parse.GetValue(precision));
            if (parse.GetValue(json)) BenchFormat.WriteJson(output, result.ToJson());
            else result.WriteTable(output);
        }));
        return command;
    }

    private static Command CreateFusions(TextWriter output, TextWriter error, Option<int> threads, Option<bool> json, Option<bool> verbose)
    {
        var model = new Option<string?>("--model", "-m") { Description = "Model to time: a single-file .safetensors checkpoint or a diffusers folder. Default: the shipped model." };
        var width = new Option<int?>("--width", "-W") { Description = "Image width in pixels. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 1, 8192, "--width must be a pixel count from 1 to 8192") };
        var height = new Option<int?>("--height", "-H") { Description = "Image height in pixels. Default: the model's.", CustomParser = r => OptionParsing.Int(r, 1, 8192, "--height must be a pixel count from 1 to 8192") };
        var repeats = Repeats(3, "Timed rounds after a warm-up; each round runs every variant once, in turn. The median counts.");
        var modelConfig = new Option<string?>("--model-config") { Description = "A diffusers folder with config.json files for a single file of non-standard shape." };
        var noOps = new Option<bool>("--no-ops") { Description = "Skip the single-op figures at SD 1.5 shapes; time only the UNet step." };
        var command = new Command("fusions",
            "Time the model's UNet step with every fusion on, with each one off in turn (DIFFUSIONSHARP_UNFUSED names) and with " +
            "all off, interleaved in one process; print each fusion's gain, the managed bytes per step, and each fusion on " +
            "its own op at SD 1.5 shapes.")
        {
            model, width, height, repeats, modelConfig, noOps,
        };
        command.SetAction(parse => CommandErrors.Run(error, parse.GetValue(verbose), cancellationToken =>
        {
            var options = new FusionBenchOptions
            {
                ModelPath = parse.GetValue(model) ?? DefaultModel.Path,
                Load = new ModelLoadOptions { ConfigFolder = parse.GetValue(modelConfig) },
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Threads = ThreadCount(parse.GetValue(threads)),
                Repeats = parse.GetValue(repeats),
                Ops = !parse.GetValue(noOps),
            };
            var result = FusionBenchmark.Run(options, error, cancellationToken);
            if (parse.GetValue(json)) BenchFormat.WriteJson(output, result.ToJson());
            else result.WriteTable(output);
        }));
        return command;
    }

    private static Option<int> Repeats(int defaultValue, string description)
        => new("--repeats", "-r")
        {
            Description = description, DefaultValueFactory = _ => defaultValue,
            CustomParser = r => OptionParsing.Int(r, 1, 1000, "--repeats must be between 1 and 1000") ?? defaultValue,
        };

    private static int ThreadCount(int option) => option == 0 ? Environment.ProcessorCount : option;
}
