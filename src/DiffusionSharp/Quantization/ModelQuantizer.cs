using DiffusionSharp.Evaluation;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Models;
using DiffusionSharp.Nn;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace DiffusionSharp.Quantization;

/// <summary>What <c>diffusion quantize</c> does.</summary>
public sealed record ModelQuantizerOptions
{
    public required string ModelPath { get; init; }
    public ModelLoadOptions Load { get; init; } = new();
    public required LayerQuantizerSettings Layer { get; init; }
    public required IReadOnlyList<SeededPrompt> CalibrationPrompts { get; init; }
    /// <summary>Sampling steps per calibration image (null: the model's default).</summary>
    public int? CalibrationSteps { get; init; }
    /// <summary>Calibration image size (null: the model's default).</summary>
    public int? Width { get; init; }
    public int? Height { get; init; }
    /// <summary>Input rows kept per layer for the output-error search.</summary>
    public int SamplesPerLayer { get; init; } = 256;
    /// <summary>Layer-key patterns ('*' matches any text) of layers that stay in 16/32-bit.</summary>
    public IReadOnlyList<string> Keep { get; init; } = DefaultKeep;
    /// <summary>
    /// Layer-key patterns of layers that svdquant and w4a4-smooth quantize plainly (W4A4 round-to-nearest: no smoothing,
    /// no low-rank branch), as the authors' configurations treat UNet ResNet convolutions; empty: none.
    /// </summary>
    public IReadOnlyList<string> Plain { get; init; } = [];
    public required string OutputPath { get; init; }

    /// <summary>
    /// The first and last convolutions (4 latent channels: tiny, and where every error reaches the image) and the time
    /// embedding MLP (one row per image) stay 16-bit, as in SVDQuant's configurations; docs/QUANTIZATION.md measures
    /// the choice.
    /// </summary>
    public static IReadOnlyList<string> DefaultKeep { get; } = ["conv_in", "conv_out", "time_embedding.*"];
}

/// <summary>Progress of a quantization run.</summary>
public sealed record QuantizeProgress(string Stage, int Done, int Total, string? Detail);

/// <summary>The outcome: the file written and every layer's choice and error.</summary>
public sealed record ModelQuantizerResult(string OutputPath, long FileBytes, IReadOnlyList<QuantizedLayer> Layers, int KeptLayers, TimeSpan CalibrationTime, TimeSpan QuantizationTime);

/// <summary>
/// <c>diffusion quantize</c>: runs the fp32 model on the calibration prompts with a <see cref="CalibrationRecorder"/>
/// observing every UNet linear and convolution layer, quantizes each layer not kept by <see cref="ModelQuantizerOptions.Keep"/>
/// with <see cref="LayerQuantizer"/>, and writes a <see cref="QuantizedUnetFile"/> holding the quantized layers and every
/// other UNet tensor (fp16). The file is written atomically: a failure or cancellation leaves no partial file.
/// </summary>
public static class ModelQuantizer
{
    public static ModelQuantizerResult Run(ModelQuantizerOptions o, IProgress<QuantizeProgress>? progress, CancellationToken cancellationToken)
    {
        using var unetWeights = ModelLoader.OpenUnetWeights(o.ModelPath, out var unetFiles);
        var layerKeys = unetWeights.Keys.Where(k => k.EndsWith(".weight", StringComparison.Ordinal)).Select(k => k[..^".weight".Length]).ToHashSet(StringComparer.Ordinal);
        using var model = ModelLoader.Load(o.ModelPath, o.Load);

        var clock = Stopwatch.StartNew();
        var recorder = new CalibrationRecorder(o.SamplesPerLayer, layerKeys.Contains);
        var pipeline = new TextToImagePipeline(model);
        using (ActivationObserver.Install(recorder))
        {
            for (int i = 0; i < o.CalibrationPrompts.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var p = o.CalibrationPrompts[i];
                progress?.Report(new QuantizeProgress("calibrating", i, o.CalibrationPrompts.Count, p.Prompt));
                pipeline.Generate(new GenerationRequest
                {
                    Prompt = p.Prompt, Seed = p.Seed, Steps = o.CalibrationSteps, Width = o.Width, Height = o.Height, Rng = RngType.Cpu,
                }, null, cancellationToken);
            }
        }
        var calibrationTime = clock.Elapsed;

        var selected = recorder.Layers.Where(r => !o.Keep.Any(p => Matches(p, r.Key))).ToList();
        var layers = new List<QuantizedLayer>();
        clock.Restart();
        for (int i = 0; i < selected.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var record = selected[i];
            progress?.Report(new QuantizeProgress("quantizing", i, selected.Count, record.Key));
            bool plain = o.Layer.Method is QuantizationMethods.SvdQuant or QuantizationMethods.W4A4Smooth && o.Plain.Any(p => Matches(p, record.Key));
            var settings = plain ? o.Layer with { Method = QuantizationMethods.W4A4Naive } : o.Layer;
            var layer = new LayerQuantizer(record, Weight(record), settings).Quantize();
            layers.Add(layer);
            progress?.Report(new QuantizeProgress("quantized", i + 1, selected.Count, Describe(layer)));
        }
        var quantizationTime = clock.Elapsed;

        var quantizedKeys = layers.Select(l => l.Key + ".weight").ToHashSet(StringComparer.Ordinal);
        var plainKeys = unetWeights.Keys.Where(k => !quantizedKeys.Contains(k)).Order(StringComparer.Ordinal).ToList();
        var info = new QuantizedFileInfo
        {
            Method = o.Layer.Method,
            Rank = o.Layer.Method == QuantizationMethods.SvdQuant ? o.Layer.Rank : 0,
            GroupSize = o.Layer.Method == QuantizationMethods.W8A8 ? 0 : o.Layer.GroupSize,
            Source = o.ModelPath,
            SourceSha256 = Sha256(unetFiles),
            Calibration = new JsonObject
            {
                ["prompts"] = o.CalibrationPrompts.Count,
                ["steps"] = o.CalibrationSteps,
                ["width"] = o.Width,
                ["height"] = o.Height,
                ["samples_per_layer"] = o.SamplesPerLayer,
                ["alpha"] = o.Layer.Alpha,
                ["alpha_steps"] = o.Layer.AlphaSteps,
                ["lowrank_iterations"] = o.Layer.LowRankIterations,
                ["gptq"] = o.Layer.Gptq,
                ["activations"] = o.Layer.AsymmetricActivations ? "asymmetric" : "symmetric",
                ["keep"] = new JsonArray(o.Keep.Select(k => (JsonNode)k).ToArray()),
                ["plain"] = new JsonArray(o.Plain.Select(k => (JsonNode)k).ToArray()),
            }.ToJsonString(),
        };
        progress?.Report(new QuantizeProgress("writing", 0, 1, o.OutputPath));
        cancellationToken.ThrowIfCancellationRequested();
        QuantizedUnetFile.Write(o.OutputPath, info, layers, unetWeights, plainKeys);
        return new ModelQuantizerResult(o.OutputPath, new FileInfo(o.OutputPath).Length, layers, recorder.Layers.Count - selected.Count, calibrationTime, quantizationTime);
    }

    /// <summary>The layer's fp32 weight as [N, K] doubles (a convolution's in (ky, kx, ci) order).</summary>
    internal static double[] Weight(CalibrationRecorder.LayerRecord r)
    {
        var w = new double[(long)r.OutChannels * r.K];
        if (r.Linear is { } linear)
        {
            var packed = linear.Weight ?? throw new InvalidOperationException($"Layer '{r.Key}' is already quantized.");
            for (int o = 0; o < r.OutChannels; o++)
            for (int i = 0; i < r.K; i++)
                w[(long)o * r.K + i] = packed[linear.WeightRow(o), i];
        }
        else
        {
            var conv = r.Convolution!.Weights ?? throw new InvalidOperationException($"Layer '{r.Key}' is already quantized.");
            for (int o = 0; o < r.OutChannels; o++)
            for (int i = 0; i < r.K; i++)
                w[(long)o * r.K + i] = conv.Matrix[o, i];
        }
        return w;
    }

    /// <summary>'*' matches any run of characters; everything else itself.</summary>
    public static bool Matches(string pattern, string key)
    {
        var parts = pattern.Split('*');
        if (parts.Length == 1) return pattern == key;
        if (!key.StartsWith(parts[0], StringComparison.Ordinal)) return false;
        int at = parts[0].Length;
        for (int i = 1; i < parts.Length - 1; i++)
        {
            int found = key.IndexOf(parts[i], at, StringComparison.Ordinal);
            if (found < 0) return false;
            at = found + parts[i].Length;
        }
        return key.Length - at >= parts[^1].Length && key.EndsWith(parts[^1], StringComparison.Ordinal);
    }

    public static string Describe(QuantizedLayer l)
    {
        string smoothing = l.Alpha is { } a ? FormattableString.Invariant($", alpha {a:0.00} beta {l.Beta:0.00}") : "";
        string rank = l.Rank > 0 ? $", rank {l.Rank}" : "";
        return FormattableString.Invariant($"{l.Key}: {l.Format}{rank}{smoothing}, relative error {l.RelativeError:0.000e+0}");
    }

    private static string Sha256(IReadOnlyList<string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (string f in files)
        {
            using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            int n;
            while ((n = s.Read(buffer)) > 0) sha.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
