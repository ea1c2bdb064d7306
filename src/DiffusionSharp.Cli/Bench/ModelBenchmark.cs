using System.Diagnostics;
using System.Text.Json.Nodes;
using DiffusionSharp.Diagnostics;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Tensors;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Cli.Bench;

/// <summary>What <c>diffusion bench -m</c> runs: a model, a size, a step count, threads and timed repeats.</summary>
public sealed record ModelBenchOptions
{
    public required string ModelPath { get; init; }
    public ModelLoadOptions Load { get; init; } = new();
    /// <summary>Image size; null = the model's default.</summary>
    public int? Width { get; init; }
    public int? Height { get; init; }
    /// <summary>Steps of the timed denoising loop; null = the model's default, at most <see cref="ModelBenchmark.DefaultStepCap"/>.</summary>
    public int? Steps { get; init; }
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Timed runs of the text encoder and of the UNet step, each after one warm-up run.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Also run one more UNet step under <see cref="OpProfiler"/> and report where its time went.</summary>
    public bool Profile { get; init; }
}

/// <summary>
/// <c>diffusion bench -m MODEL</c>: loads a model, then times its parts separately — the text encoder (prompt and
/// negative prompt, as the pipeline encodes them), one UNet step (batch 2 for classifier-free guidance, batch 1 for
/// guidance-embedded models; median of the timed runs after a warm-up), a full denoising loop through
/// <see cref="TextToImagePipeline"/>, and its VAE decode — and reports them with the step's GFLOP/s against the FMA
/// ceiling measured in the same process, the peak resident memory and the managed bytes one step allocates.
/// </summary>
public sealed record ModelBenchmark
{
    /// <summary>The loop runs the model's default step count, but no more than this (a benchmark, not a picture).</summary>
    public const int DefaultStepCap = 4;
    public const string Prompt = "a photo of a cat";

    public required BenchMachine Machine { get; init; }
    public required string Model { get; init; }
    public required string ModelPath { get; init; }
    /// <summary>The quantized UNet file timed instead of the model's own UNet (null: none).</summary>
    public string? QuantizedUnet { get; init; }
    /// <summary>How the linear and convolution weights were held (<see cref="ModelLoadOptions.Precision"/>).</summary>
    public required WeightPrecision Precision { get; init; }
    public required ModelFamilyInfo Family { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int Steps { get; init; }
    public required string Sampler { get; init; }
    public required double CfgScale { get; init; }
    /// <summary>Batch of one UNet evaluation per step: 2 with classifier-free guidance, 1 for guidance-embedded models (or CFG scale 1).</summary>
    public required int UnetBatch { get; init; }
    public required int Repeats { get; init; }
    public required double LoadSeconds { get; init; }
    public required double TextEncoderSeconds { get; init; }
    public required double UnetStepSeconds { get; init; }
    /// <summary>FLOPs of one step: UnetBatch x <see cref="Models.Unet.Unet2DConditionModel.FlopsPerForward"/>.</summary>
    public required long UnetFlopsPerStep { get; init; }
    public required double LoopSeconds { get; init; }
    public required double VaeDecodeSeconds { get; init; }
    public required long VaeDecodeFlops { get; init; }
    /// <summary>Wall time of one whole image through the pipeline: text encoding, the loop, the decode.</summary>
    public required double ImageSeconds { get; init; }
    /// <summary>Resident memory right after loading: the converted and packed weights, the weight file closed again.</summary>
    public required long LoadedRssBytes { get; init; }
    /// <summary>The process's peak resident memory (VmHWM) over loading and all the timed work.</summary>
    public required long PeakRssBytes { get; init; }
    /// <summary>Managed bytes allocated (all threads) by one warm UNet step; the fewest over the timed runs.</summary>
    public required long StepAllocatedBytes { get; init; }

    /// <summary>
    /// With a quantized UNet: the fp32 UNet step of the same model and the quantized one again, timed alternately in this
    /// process after everything above (so neither their memory nor their timing runs count in the figures above): the
    /// median seconds of each, for a ratio a busy machine skews as little as possible. Null without a quantized UNet.
    /// </summary>
    public (double Fp32, double Quantized)? StepComparison { get; init; }

    /// <summary>With <see cref="ModelBenchOptions.Profile"/>: the mean wall time of <see cref="Repeats"/> more UNet steps run
    /// under the op profiler and their operations per step, largest time first (what is not in them — elementwise passes,
    /// copies, the glue between layers — is the step minus their sum).</summary>
    public (double Seconds, IReadOnlyList<OpTotals> Ops)? StepProfile { get; init; }

    public double? QuantizedSpeedup => StepComparison is { } c ? c.Fp32 / c.Quantized : null;

    public double UnetGflopsPerStep => UnetFlopsPerStep / UnetStepSeconds / 1e9;
    public double UnetPeakFraction => UnetGflopsPerStep / Machine.Ceilings.FmaGflops;
    public double LoopStepSeconds => LoopSeconds / Steps;

    /// <summary>Runs the benchmark; stage names go to <paramref name="log"/>, the loop's steps to <paramref name="progress"/>.</summary>
    public static ModelBenchmark Run(ModelBenchOptions options, TextWriter log, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Repeats, 1);
        var machine = BenchMachine.Describe(options.Threads);
        ModelBenchmark result;
        using (var scheduler = new ThreadScheduler(options.Threads))
        using (scheduler.Use())
        {
            log.WriteLine($"loading {options.ModelPath}");
            using var model = ModelLoader.Load(options.ModelPath, options.Load, new LogProgress(log));
            long loadedRss = ProcessMemory.ResidentBytes();
            log.WriteLine(BenchFormat.Invariant($"loaded {model.Family.DisplayName} model '{model.Name}' in {model.LoadTime.TotalSeconds:0.00} s"));
            result = Measure(model, loadedRss, machine, options, log, progress, cancellationToken);
            if (options.Load.QuantizedUnet != null)
            {
                log.WriteLine("loading the fp32 UNet for the same-process comparison");
                using var fp32 = ModelLoader.Load(options.ModelPath, options.Load with { QuantizedUnet = null });
                result = result with { StepComparison = CompareSteps(fp32, model, result, options.Repeats) };
            }
        }
        // The ceilings come last: their 192 MB of triad arrays must not count in the model's peak resident memory.
        log.WriteLine("measuring the machine's ceilings");
        return result with { Machine = machine with { Ceilings = MachineCeilings.Measure(options.Threads) } };
    }

    private static ModelBenchmark Measure(StableDiffusionModel model, long loadedRss, BenchMachine machine, ModelBenchOptions options, TextWriter log,
        IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        var request = new GenerationRequest
        {
            Prompt = Prompt,
            Width = options.Width,
            Height = options.Height,
            Steps = options.Steps ?? Math.Min(model.Defaults.Steps, DefaultStepCap),
        };
        var settings = ResolvedSettings.Resolve(request, model);
        bool guidanceEmbedded = model.HasGuidanceEmbedding;
        int batch = !guidanceEmbedded && settings.CfgScale != 1.0 ? 2 : 1;    // as TextToImagePipeline decides
        int lh = settings.Height / model.LatentScale, lw = settings.Width / model.LatentScale;
        int tokens = model.TextEncoder.Config.MaxPositionEmbeddings;

        log.WriteLine($"timing the text encoder (batch {batch})");
        int[] ids = TokenIds(model, batch, tokens);
        var textSeconds = Timing.Repeat(options.Repeats, () => model.TextEncoder.Forward(ids, batch).Dispose());
        cancellationToken.ThrowIfCancellationRequested();

        log.WriteLine(BenchFormat.Invariant($"timing one UNet step at {settings.Width}x{settings.Height} (batch {batch})"));
        using var context = model.TextEncoder.Forward(ids, batch);                                 // [B, 77, C]
        using var inputs = new UnetStepInputs(model, batch, lh, lw, settings.CfgScale);
        var (stepSeconds, stepAllocated, profile) = TimeUnetStep(model.Unet, inputs, context, options.Repeats, options.Profile);
        cancellationToken.ThrowIfCancellationRequested();

        log.WriteLine($"running the pipeline: {settings.Steps} step{(settings.Steps == 1 ? "" : "s")} and the VAE decode");
        var clock = Stopwatch.StartNew();
        var generated = new TextToImagePipeline(model).Generate(request, progress, cancellationToken);
        double imageSeconds = clock.Elapsed.TotalSeconds;
        var timings = generated.Images[0].Timings;

        return new ModelBenchmark
        {
            Machine = machine,
            Model = model.Name,
            ModelPath = model.Source,
            QuantizedUnet = options.Load.QuantizedUnet,
            Precision = options.Load.Precision,
            Family = model.Family,
            Width = settings.Width,
            Height = settings.Height,
            Steps = settings.Steps,
            Sampler = settings.Sampler.Name,
            CfgScale = settings.CfgScale,
            UnetBatch = batch,
            Repeats = options.Repeats,
            LoadSeconds = model.LoadTime.TotalSeconds,
            TextEncoderSeconds = Timing.Median(textSeconds),
            UnetStepSeconds = stepSeconds,
            UnetFlopsPerStep = batch * model.Unet.FlopsPerForward(lh, lw, tokens),
            LoopSeconds = timings.Denoising.TotalSeconds,
            VaeDecodeSeconds = timings.Decoding.TotalSeconds,
            VaeDecodeFlops = model.Vae.DecodeFlops(lh, lw),
            ImageSeconds = imageSeconds,
            LoadedRssBytes = loadedRss,
            PeakRssBytes = ProcessMemory.PeakResidentBytes(),
            StepAllocatedBytes = stepAllocated,
            StepProfile = profile,
        };
    }

    /// <summary>[negative, prompt] (or [prompt] alone for one pass), padded to the encoder's length, as the pipeline tokenizes.</summary>
    internal static int[] TokenIds(StableDiffusionModel model, int batch, int tokens)
    {
        var ids = new int[batch * tokens];
        model.Tokenizer.Tokenize(Prompt, tokens).InputIds.AsSpan().CopyTo(ids.AsSpan((batch - 1) * tokens));
        if (batch == 2) model.Tokenizer.Tokenize("", tokens).InputIds.AsSpan().CopyTo(ids);
        return ids;
    }

    /// <summary>Median seconds of one UNet evaluation after a warm-up, the fewest managed bytes one of them allocated, and
    /// (when <paramref name="profile"/>) <paramref name="repeats"/> more evaluations under the op profiler, per step.</summary>
    private static (double Seconds, long AllocatedBytes, (double, IReadOnlyList<OpTotals>)? Profile) TimeUnetStep(Unet2DConditionModel unet,
        UnetStepInputs inputs, Tensor context, int repeats, bool profile)
    {
        long fewest = long.MaxValue;
        var seconds = Timing.Repeat(repeats, () =>
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            inputs.Step(unet, context);
            fewest = Math.Min(fewest, GC.GetTotalAllocatedBytes(precise: true) - before);
        });
        if (!profile) return (Timing.Median(seconds), fewest, null);
        OpProfiler.Begin();
        long start = Stopwatch.GetTimestamp();
        IReadOnlyList<OpTotals> ops;
        try
        {
            for (int r = 0; r < repeats; r++) inputs.Step(unet, context);
        }
        finally
        {
            ops = OpProfiler.End();
        }
        double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var perStep = ops.Select(op => op with { Calls = op.Calls / repeats, Time = op.Time / repeats, MultiplyAccumulates = op.MultiplyAccumulates / repeats }).ToList();
        return (Timing.Median(seconds), fewest, (total / repeats, perStep));
    }

    /// <summary>Median seconds of the fp32 and the quantized UNet step, timed alternately (one warm-up each).</summary>
    private static (double, double) CompareSteps(StableDiffusionModel fp32, StableDiffusionModel quantized, ModelBenchmark settings, int repeats)
    {
        int batch = settings.UnetBatch, lh = settings.Height / quantized.LatentScale, lw = settings.Width / quantized.LatentScale;
        int[] ids = TokenIds(quantized, batch, quantized.TextEncoder.Config.MaxPositionEmbeddings);
        using var context = quantized.TextEncoder.Forward(ids, batch);                             // [B, 77, C]
        using var inputs = new UnetStepInputs(quantized, batch, lh, lw, settings.CfgScale);
        var a = new List<double>();
        var b = new List<double>();
        for (int r = 0; r <= Math.Max(3, repeats); r++)
        {
            long start = Stopwatch.GetTimestamp();
            inputs.Step(fp32.Unet, context);
            double fp32Seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            start = Stopwatch.GetTimestamp();
            inputs.Step(quantized.Unet, context);
            double quantizedSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (r == 0) continue;
            a.Add(fp32Seconds);
            b.Add(quantizedSeconds);
        }
        return (Timing.Median(a), Timing.Median(b));
    }

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["benchmark"] = "model" };
        Machine.AddTo(json);
        json["model"] = Model;
        json["model_path"] = ModelPath;
        json["quantized_unet"] = QuantizedUnet;
        json["precision"] = Precision.Name();
        json["family"] = Family.Family.ToString();
        json["width"] = Width;
        json["height"] = Height;
        json["steps"] = Steps;
        json["sampler"] = Sampler;
        json["cfg_scale"] = CfgScale;
        json["unet_batch"] = UnetBatch;
        json["repeats"] = Repeats;
        json["load_seconds"] = BenchFormat.Round(LoadSeconds);
        json["text_encoder_seconds"] = BenchFormat.Round(TextEncoderSeconds);
        json["unet_step_seconds"] = BenchFormat.Round(UnetStepSeconds);
        json["unet_flops_per_step"] = UnetFlopsPerStep;
        json["unet_gflops_per_step"] = BenchFormat.Round(UnetGflopsPerStep);
        json["unet_peak_fraction"] = BenchFormat.Round(UnetPeakFraction);
        json["loop_seconds"] = BenchFormat.Round(LoopSeconds);
        json["loop_step_seconds"] = BenchFormat.Round(LoopStepSeconds);
        json["vae_decode_seconds"] = BenchFormat.Round(VaeDecodeSeconds);
        json["vae_decode_flops"] = VaeDecodeFlops;
        json["image_seconds"] = BenchFormat.Round(ImageSeconds);
        json["loaded_rss_bytes"] = LoadedRssBytes;
        json["peak_rss_bytes"] = PeakRssBytes;
        json["step_allocated_bytes"] = StepAllocatedBytes;
        if (StepProfile is { } p)
        {
            json["profile_step_seconds"] = BenchFormat.Round(p.Seconds);
            var ops = new JsonArray();
            foreach (var op in p.Ops)
                ops.Add(new JsonObject
                {
                    ["kind"] = op.Shape.Kind, ["m"] = op.Shape.M, ["n"] = op.Shape.N, ["k"] = op.Shape.K, ["calls"] = op.Calls,
                    ["seconds"] = BenchFormat.Round(op.Time.TotalSeconds), ["multiply_accumulates"] = op.MultiplyAccumulates,
                });
            json["profile"] = ops;
        }
        if (StepComparison is { } c)
        {
            json["fp32_unet_step_seconds"] = BenchFormat.Round(c.Fp32);
            json["quantized_unet_step_seconds"] = BenchFormat.Round(c.Quantized);
            json["quantized_speedup"] = BenchFormat.Round(c.Fp32 / c.Quantized);
        }
        return json;
    }

    public void WriteTable(TextWriter o)
    {
        Machine.WriteTable(o);
        o.WriteLine(BenchFormat.Invariant(
            $"model       {Model} ({Family.DisplayName}), {Width}x{Height}, {Steps} step{(Steps == 1 ? "" : "s")} of {Sampler}, cfg {CfgScale}, UNet batch {UnetBatch}{(UnetBatch == 1 ? " (one pass per step)" : " (classifier-free guidance)")}"));
        if (QuantizedUnet != null) o.WriteLine($"quantized   UNet from {QuantizedUnet}");
        o.WriteLine();
        string Row(string stage, string time, string detail) => $"{stage,-26} {time,10}   {detail}";
        string timed = Repeats == 1 ? "one run after a warm-up" : $"median of {Repeats} after a warm-up";
        o.WriteLine(Row("stage", "time", ""));
        o.WriteLine(Row("load", BenchFormat.Seconds(LoadSeconds), "weights converted and packed"));
        o.WriteLine(Row($"text encoder (batch {UnetBatch})", BenchFormat.Seconds(TextEncoderSeconds), timed));
        o.WriteLine(Row("UNet step", BenchFormat.Seconds(UnetStepSeconds), BenchFormat.Invariant(
            $"{timed}; {UnetFlopsPerStep / 1e9:0.###} GFLOP, {UnetGflopsPerStep:0.#} GFLOP/s = {UnetPeakFraction:P1} of the {Machine.Threads}-thread FMA peak")));
        o.WriteLine(Row($"denoising loop ({Steps})", BenchFormat.Seconds(LoopSeconds), $"{BenchFormat.Seconds(LoopStepSeconds)} per step, sampler included"));
        o.WriteLine(Row("VAE decode", BenchFormat.Seconds(VaeDecodeSeconds), BenchFormat.Invariant($"{VaeDecodeFlops / 1e9:0.###} GFLOP")));
        o.WriteLine(Row("image", BenchFormat.Seconds(ImageSeconds), "text + loop + decode, one image"));
        o.WriteLine(Row("resident after load", BenchFormat.Bytes(LoadedRssBytes), $"weights packed as {Precision.Name()}"));
        o.WriteLine(Row("peak resident memory", BenchFormat.Bytes(PeakRssBytes), "VmHWM: loading and all the timed work"));
        o.WriteLine(Row("managed bytes per step", BenchFormat.Bytes(StepAllocatedBytes), "GC heap, all threads, one warm UNet step"));
        if (StepComparison is { } c)
            o.WriteLine(Row("quantized vs fp32 step", BenchFormat.Invariant($"{c.Fp32 / c.Quantized:0.00}x"),
                $"fp32 {BenchFormat.Seconds(c.Fp32)}, quantized {BenchFormat.Seconds(c.Quantized)}: medians of alternating runs in this process"));
        if (StepProfile is { } p) WriteProfile(o, p.Seconds, p.Ops);
    }

    /// <summary>The profiled step by kind of operation, then its costliest shapes (GFLOP/s count 2 per multiply-add;
    /// the FMA-peak fraction only for fp32 kinds; Winograd rows count the direct convolution's FLOPs).</summary>
    private void WriteProfile(TextWriter o, double stepSeconds, IReadOnlyList<OpTotals> ops)
    {
        double fma = Machine.Ceilings.FmaGflops;
        string Rate(string kind, long macs, TimeSpan time)
        {
            if (macs == 0) return "";
            double gflops = 2.0 * macs / time.TotalSeconds / 1e9;
            bool integer = kind.Contains("w4a4") || kind.Contains("w8a8");
            return integer ? BenchFormat.Invariant($"{gflops,7:0} GOP/s") : BenchFormat.Invariant($"{gflops,7:0} GFLOP/s  {gflops / fma,5:P0} of peak");
        }
        o.WriteLine();
        o.WriteLine(BenchFormat.Invariant($"profile of {Repeats} more UNet step{(Repeats == 1 ? "" : "s")}, per step: {BenchFormat.Seconds(stepSeconds)}"));
        o.WriteLine($"{"kind",-24} {"calls",6} {"time",10} {"share",6}   rate");
        foreach (var kind in ops.GroupBy(op => op.Shape.Kind)
                     .Select(g => (Kind: g.Key, Calls: g.Sum(x => x.Calls), Time: TimeSpan.FromTicks(g.Sum(x => x.Time.Ticks)), Macs: g.Sum(x => x.MultiplyAccumulates)))
                     .OrderByDescending(k => k.Time))
            o.WriteLine(BenchFormat.Invariant(
                $"{kind.Kind,-24} {kind.Calls,6} {BenchFormat.Seconds(kind.Time.TotalSeconds),10} {kind.Time.TotalSeconds / stepSeconds,6:P0}   {Rate(kind.Kind, kind.Macs, kind.Time)}"));
        double other = stepSeconds - ops.Sum(op => op.Time.TotalSeconds);
        o.WriteLine(BenchFormat.Invariant($"{"other (elementwise, copies)",-24} {"",6} {BenchFormat.Seconds(Math.Max(0, other)),10} {Math.Max(0, other) / stepSeconds,6:P0}"));
        o.WriteLine();
        o.WriteLine($"{"costliest shapes (M x N x K)",-44} {"calls",6} {"time",10} {"share",6}   rate");
        foreach (var op in ops.Take(20))
        {
            string shape = op.Shape.K > 0 ? $"{op.Shape.M}x{op.Shape.N}x{op.Shape.K}" : $"{op.Shape.M}x{op.Shape.N}";
            o.WriteLine(BenchFormat.Invariant(
                $"{op.Shape.Kind + " " + shape,-44} {op.Calls,6} {BenchFormat.Seconds(op.Time.TotalSeconds),10} {op.Time.TotalSeconds / stepSeconds,6:P0}   {Rate(op.Shape.Kind, op.MultiplyAccumulates, op.Time)}"));
        }
    }

    private sealed class LogProgress(TextWriter log) : IProgress<string>
    {
        public void Report(string value) => log.WriteLine(value);
    }
}
