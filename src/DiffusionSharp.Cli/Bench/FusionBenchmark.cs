using System.Diagnostics;
using System.Text.Json.Nodes;
using DiffusionSharp.Kernels;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Tensors;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Cli.Bench;

/// <summary>What <c>diffusion bench fusions</c> runs: a model, a size, threads, timed repeats, and whether to time the single ops.</summary>
public sealed record FusionBenchOptions
{
    public required string ModelPath { get; init; }
    public ModelLoadOptions Load { get; init; } = new();
    /// <summary>Image size; null = the model's default.</summary>
    public int? Width { get; init; }
    public int? Height { get; init; }
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Timed rounds; each round times every variant once, in turn.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Also time each fusion on a single op at SD 1.5 shapes (<see cref="FusionOp"/>).</summary>
    public bool Ops { get; init; } = true;
}

/// <summary>One configuration of the fusion switches and its UNet step: median seconds, or why it did not run.</summary>
public sealed record FusionVariant(string Name, Fusion Enabled, IReadOnlyList<double> Runs, long AllocatedBytes, string? Skipped)
{
    public double? Seconds => Runs.Count > 0 ? Timing.Median(Runs) : null;
}

/// <summary>One op's fused and unfused best times.</summary>
public sealed record FusionOpResult(string Fusion, string Name, double FusedSeconds, double UnfusedSeconds)
{
    public double Gain => UnfusedSeconds / FusedSeconds;
}

/// <summary>
/// <c>diffusion bench fusions</c>: what each fusion of "Speed Is All You Need" buys on this machine. One process loads
/// the model once and times its UNet step (batch 2 with classifier-free guidance, timestep 999) with every fusion on,
/// with each one off in turn, and with all off; one warm-up each, then <c>repeats</c> rounds in which every variant runs
/// once, in turn, so a busy machine's slow minutes spread over all of them. A fusion's gain is the median step with it
/// off over the median with everything on. A variant a twin refuses (whole attention score matrices past 256 MiB) is
/// reported as skipped, with the reason. Then each fusion on its own op at SD 1.5 shapes, fused and unfused alternately,
/// best of the runs (<see cref="FusionOp"/>). Also: the managed bytes one step allocates (all threads).
/// </summary>
public sealed record FusionBenchmark
{
    public const string AllFused = "all fused";
    public const string AllUnfused = "all unfused";
    public const string AllUnfusedButSoftmax = "all unfused but softmax";

    public required BenchMachine Machine { get; init; }
    public required string Model { get; init; }
    public required string ModelPath { get; init; }
    public required ModelFamilyInfo Family { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int UnetBatch { get; init; }
    public required int Repeats { get; init; }
    public required IReadOnlyList<FusionVariant> Variants { get; init; }
    public required IReadOnlyList<FusionOpResult> Ops { get; init; }

    public FusionVariant Baseline => Variants[0];

    /// <summary>Median step of <paramref name="variant"/> over the all-fused median: what the fusions it lacks buy.</summary>
    public double? Gain(FusionVariant variant) => variant.Seconds is { } s && Baseline.Seconds is { } b ? s / b : null;

    public static FusionBenchmark Run(FusionBenchOptions options, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Repeats, 1);
        var machine = BenchMachine.Describe(options.Threads);
        var previous = Fusions.Enabled;
        try
        {
            using var scheduler = new ThreadScheduler(options.Threads);
            using var scope = scheduler.Use();
            log.WriteLine($"loading {options.ModelPath}");
            using var model = ModelLoader.Load(options.ModelPath, options.Load);
            var settings = ResolvedSettings.Resolve(new GenerationRequest { Prompt = ModelBenchmark.Prompt, Width = options.Width, Height = options.Height }, model);
            int batch = !model.HasGuidanceEmbedding && settings.CfgScale != 1.0 ? 2 : 1;    // as TextToImagePipeline decides
            var variants = TimeVariants(model, settings, batch, options.Repeats, log, cancellationToken);
            var ops = new List<FusionOpResult>();
            if (options.Ops)
            {
                Fusions.Enabled = Fusion.All;
                foreach (var make in FusionOp.Sd15)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var op = make();
                    log.WriteLine($"timing {op.Name}, fused and unfused");
                    ops.Add(TimeOp(op, options.Repeats));
                }
            }
            var result = new FusionBenchmark
            {
                Machine = machine,
                Model = model.Name,
                ModelPath = model.Source,
                Family = model.Family,
                Width = settings.Width,
                Height = settings.Height,
                UnetBatch = batch,
                Repeats = options.Repeats,
                Variants = variants,
                Ops = ops,
            };
            log.WriteLine("measuring the machine's ceilings");
            return result with { Machine = machine with { Ceilings = MachineCeilings.Measure(options.Threads) } };
        }
        finally
        {
            Fusions.Enabled = previous;
        }
    }

    private static List<FusionVariant> TimeVariants(StableDiffusionModel model, ResolvedSettings settings, int batch, int repeats,
        TextWriter log, CancellationToken cancellationToken)
    {
        int lh = settings.Height / model.LatentScale, lw = settings.Width / model.LatentScale;
        int[] ids = ModelBenchmark.TokenIds(model, batch, model.TextEncoder.Config.MaxPositionEmbeddings);
        using var context = model.TextEncoder.Forward(ids, batch);                                 // [B, 77, C]
        using var inputs = new UnetStepInputs(model, batch, lh, lw, settings.CfgScale);
        void Step() => inputs.Step(model.Unet, context);

        var configs = new List<(string Name, Fusion Enabled)> { (AllFused, Fusion.All) };
        foreach (var fusion in Fusions.Each) configs.Add(($"{Fusions.Name(fusion)} off", Fusion.All & ~fusion));
        configs.Add((AllUnfused, Fusion.None));

        var runs = configs.Select(_ => new List<double>()).ToArray();
        var allocated = configs.Select(_ => long.MaxValue).ToArray();
        var skipped = new string?[configs.Count];
        for (int round = 0; round <= repeats; round++)
        {
            for (int i = 0; i < configs.Count; i++)
            {
                if (skipped[i] != null) continue;
                cancellationToken.ThrowIfCancellationRequested();
                if (round == 0) log.WriteLine(BenchFormat.Invariant($"warming up the UNet step at {settings.Width}x{settings.Height} (batch {batch}), {configs[i].Name}"));
                else if (i == 0) log.WriteLine($"round {round} of {repeats}");
                Fusions.Enabled = configs[i].Enabled;
                long before = GC.GetTotalAllocatedBytes(precise: true);
                long start = Stopwatch.GetTimestamp();
                try
                {
                    Step();
                }
                catch (InvalidOperationException e) when (round == 0)
                {
                    log.WriteLine($"  skipped: {e.Message}");
                    if (configs[i].Enabled == Fusion.None)
                    {
                        // Everything else off still says what the fusions buy together at a size the score matrices refuse.
                        configs[i] = (AllUnfusedButSoftmax, Fusion.Softmax);
                        i--;
                        continue;
                    }
                    skipped[i] = e.Message;
                    continue;
                }
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
                if (round == 0) continue;
                runs[i].Add(seconds);
                allocated[i] = Math.Min(allocated[i], bytes);
            }
        }
        return configs.Select((c, i) => new FusionVariant(c.Name, c.Enabled, runs[i], skipped[i] == null ? allocated[i] : 0, skipped[i])).ToList();
    }

    /// <summary>One warm-up of each, then fused and unfused alternately; the best of each counts, as in <c>bench ops</c>.</summary>
    private static FusionOpResult TimeOp(FusionOp op, int repeats)
    {
        op.RunFused();
        op.RunUnfused();
        double fused = double.MaxValue, unfused = double.MaxValue;
        for (int r = 0; r < Math.Max(3, repeats); r++)
        {
            long start = Stopwatch.GetTimestamp();
            op.RunFused();
            fused = Math.Min(fused, Stopwatch.GetElapsedTime(start).TotalSeconds);
            start = Stopwatch.GetTimestamp();
            op.RunUnfused();
            unfused = Math.Min(unfused, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return new FusionOpResult(op.Fusion, op.Name, fused, unfused);
    }

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["benchmark"] = "fusions" };
        Machine.AddTo(json);
        json["model"] = Model;
        json["model_path"] = ModelPath;
        json["family"] = Family.Family.ToString();
        json["width"] = Width;
        json["height"] = Height;
        json["unet_batch"] = UnetBatch;
        json["repeats"] = Repeats;
        json["step_allocated_bytes"] = Baseline.AllocatedBytes;
        var variants = new JsonArray();
        foreach (var v in Variants)
        {
            variants.Add(new JsonObject
            {
                ["name"] = v.Name,
                ["unfused"] = new JsonArray(Fusions.Each.Where(f => (v.Enabled & f) == 0).Select(f => (JsonNode)Fusions.Name(f)).ToArray()),
                ["unet_step_seconds"] = v.Seconds is { } s ? BenchFormat.Round(s) : null,
                ["runs_seconds"] = new JsonArray(v.Runs.Select(r => (JsonNode)BenchFormat.Round(r)).ToArray()),
                ["gain"] = Gain(v) is { } g ? BenchFormat.Round(g) : null,
                ["step_allocated_bytes"] = v.Skipped == null ? v.AllocatedBytes : null,
                ["skipped"] = v.Skipped,
            });
        }
        json["variants"] = variants;
        var ops = new JsonArray();
        foreach (var o in Ops)
        {
            ops.Add(new JsonObject
            {
                ["fusion"] = o.Fusion,
                ["name"] = o.Name,
                ["fused_seconds"] = BenchFormat.Round(o.FusedSeconds),
                ["unfused_seconds"] = BenchFormat.Round(o.UnfusedSeconds),
                ["gain"] = BenchFormat.Round(o.Gain),
            });
        }
        json["ops"] = ops;
        return json;
    }

    public void WriteTable(TextWriter o)
    {
        Machine.WriteTable(o);
        o.WriteLine(BenchFormat.Invariant(
            $"model       {Model} ({Family.DisplayName}), {Width}x{Height}, UNet batch {UnetBatch}; {Repeats} round{(Repeats == 1 ? "" : "s")} after a warm-up, variants interleaved"));
        o.WriteLine();
        o.WriteLine($"{"UNet step",-26} {"median",10} {"gain",7}   {"managed bytes",14}   runs");
        foreach (var v in Variants)
        {
            if (v.Skipped != null)
            {
                o.WriteLine($"{v.Name,-26} {"skipped",10}   {v.Skipped}");
                continue;
            }
            string gain = Gain(v) is { } g ? BenchFormat.Invariant($"{g:0.000}x") : "";
            string runs = string.Join(" ", v.Runs.Select(BenchFormat.Seconds));
            o.WriteLine($"{v.Name,-26} {BenchFormat.Seconds(v.Seconds!.Value),10} {gain,7}   {BenchFormat.Bytes(v.AllocatedBytes),14}   {runs}");
        }
        o.WriteLine("gain = this variant's median step / the all-fused median: what the fusions it lacks buy (1.000x: nothing).");
        if (Ops.Count == 0) return;
        o.WriteLine();
        o.WriteLine($"{"op (SD 1.5 512x512 shapes)",-44} {"fusion",-16} {"fused",10} {"unfused",10} {"gain",7}");
        foreach (var r in Ops)
            o.WriteLine(BenchFormat.Invariant($"{r.Name,-44} {r.Fusion,-16} {BenchFormat.Seconds(r.FusedSeconds),10} {BenchFormat.Seconds(r.UnfusedSeconds),10} {r.Gain,6:0.00}x"));
        o.WriteLine("ops: best of the alternating runs; gain = unfused / fused.");
    }
}
