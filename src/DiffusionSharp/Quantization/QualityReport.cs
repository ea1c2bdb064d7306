using DiffusionSharp.Diagnostics;
using DiffusionSharp.Evaluation;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Models;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Sampling.Rng;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text;

namespace DiffusionSharp.Quantization;

/// <summary>What <c>diffusion quantize --report</c> compares.</summary>
public sealed record QualityReportOptions
{
    public required string ModelPath { get; init; }
    public ModelLoadOptions Load { get; init; } = new();
    public required IReadOnlyList<SeededPrompt> Prompts { get; init; }
    /// <summary>Quantized UNet files; each is named by its file name without extension.</summary>
    public required IReadOnlyList<string> Variants { get; init; }
    public required string OutputFolder { get; init; }
    /// <summary>Prompts shown in the grid (rows), the first ones of the list.</summary>
    public int GridRows { get; init; } = 8;
}

/// <summary>One row of the report.</summary>
public sealed record VariantQuality(string Name, string? File, long FileBytes, int Images, double MeanPsnr, double MedianPsnr, double MeanSsim,
    long LoadedRssBytes, long PeakRssBytes, double SecondsPerImage);

/// <summary>
/// The quality report of quantized UNets: the fp32 model and each variant generate the same prompts with the same
/// seeds (torch's CPU generator, as <c>tools/train/evaluate.py</c>'s prompt lists expect), and each variant's images
/// are compared with the fp32 ones (<see cref="ImageMetrics"/>: PSNR, SSIM). Writes
/// <c>OUT/fp32/*.png</c> and <c>OUT/VARIANT/*.png</c> (score them with <c>tools/eval/score.py</c>),
/// <c>OUT/grid.png</c> (fp32 and the variants side by side for the first prompts), <c>OUT/report.md</c> and
/// <c>OUT/report.json</c>. Peak resident memory is measured per variant by resetting the kernel's high-water mark
/// (Linux <c>/proc/self/clear_refs</c>) before loading it.
/// </summary>
public static class QualityReport
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    public static IReadOnlyList<VariantQuality> Run(QualityReportOptions o, TextWriter log, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(o.OutputFolder);
        var results = new List<VariantQuality>();
        var (fp32Row, reference) = Generate(o, "fp32", null, log, null, cancellationToken);
        results.Add(fp32Row);
        var grid = new List<RgbImage[]> { reference.Take(o.GridRows).ToArray() };
        foreach (string variant in o.Variants)
        {
            string name = Path.GetFileNameWithoutExtension(variant);
            var (row, images) = Generate(o, name, variant, log, reference, cancellationToken);
            results.Add(row);
            grid.Add(images.Take(o.GridRows).ToArray());
        }
        PngWriter.Write(Path.Combine(o.OutputFolder, "grid.png"), Grid(grid));
        File.WriteAllText(Path.Combine(o.OutputFolder, "report.md"), Markdown(o, results));
        File.WriteAllText(Path.Combine(o.OutputFolder, "report.json"), Json(o, results).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return results;
    }

    private static (VariantQuality Row, List<RgbImage> Images) Generate(QualityReportOptions o, string name, string? quantized, TextWriter log,
        List<RgbImage>? reference, CancellationToken cancellationToken)
    {
        ResetPeakResident();
        log.WriteLine($"{name}: loading");
        using var model = ModelLoader.Load(o.ModelPath, o.Load with { QuantizedUnet = quantized });
        long loaded = ProcessMemory.ResidentBytes();
        string folder = Path.Combine(o.OutputFolder, name);
        Directory.CreateDirectory(folder);
        var pipeline = new TextToImagePipeline(model);
        var images = new List<RgbImage>();
        var psnr = new List<double>();
        var ssim = new List<double>();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < o.Prompts.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var p = o.Prompts[i];
            var image = pipeline.Generate(new GenerationRequest { Prompt = p.Prompt, NegativePrompt = p.NegativePrompt, Seed = p.Seed, Rng = RngType.Cpu }, null, cancellationToken).Images[0];
            PngWriter.Write(Path.Combine(folder, p.File ?? $"{i:0000}.png"), image.Image, [new(Infotext.ChunkKeyword, image.Parameters)]);
            images.Add(image.Image);
            if (reference != null)
            {
                psnr.Add(ImageMetrics.Psnr(reference[i], image.Image));
                ssim.Add(ImageMetrics.Ssim(reference[i], image.Image));
            }
            if ((i + 1) % 20 == 0 || i + 1 == o.Prompts.Count) log.WriteLine($"{name}: {i + 1}/{o.Prompts.Count} images");
        }
        double seconds = clock.Elapsed.TotalSeconds / o.Prompts.Count;
        long bytes = quantized != null ? new FileInfo(quantized).Length : 0;
        var finite = psnr.Select(v => Math.Min(v, 100)).ToList();
        var row = new VariantQuality(name, quantized, bytes, images.Count,
            reference != null ? finite.Average() : double.NaN, reference != null ? Median(finite) : double.NaN,
            reference != null ? ssim.Average() : double.NaN, loaded, ProcessMemory.PeakResidentBytes(), seconds);
        return (row, images);
    }

    /// <summary>Columns: fp32 then the variants; rows: prompts; 2-pixel white gaps.</summary>
    private static RgbImage Grid(List<RgbImage[]> columns)
    {
        const int Gap = 2;
        int rows = columns[0].Length, w = columns[0][0].Width, h = columns[0][0].Height;
        int width = columns.Count * (w + Gap) + Gap, height = rows * (h + Gap) + Gap;
        var pixels = new byte[width * height * 3];
        Array.Fill(pixels, (byte)255);
        for (int c = 0; c < columns.Count; c++)
        for (int r = 0; r < rows; r++)
        {
            var image = columns[c][r];
            int x0 = Gap + c * (w + Gap), y0 = Gap + r * (h + Gap);
            for (int y = 0; y < h; y++)
                Array.Copy(image.Pixels, y * w * 3, pixels, ((y0 + y) * width + x0) * 3, w * 3);
        }
        return new RgbImage(width, height, pixels);
    }

    private static string Markdown(QualityReportOptions o, List<VariantQuality> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Model `{o.ModelPath}`, {o.Prompts.Count} prompts, same seeds (torch CPU generator); PSNR and SSIM against the fp32 images.");
        sb.AppendLine();
        sb.AppendLine("| variant | PSNR mean (dB) | PSNR median | SSIM mean | UNet file | resident after load | peak resident | s / image |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            string file = r.File != null ? Mib(r.FileBytes) : "(model's own)";
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {Number(r.MeanPsnr, "0.00")} | {Number(r.MedianPsnr, "0.00")} | {Number(r.MeanSsim, "0.0000")} | {file} | {Mib(r.LoadedRssBytes)} | {Mib(r.PeakRssBytes)} | {r.SecondsPerImage:0.000} |");
        }
        sb.AppendLine();
        sb.AppendLine("Images: `fp32/`, one folder per variant; `grid.png` shows the first prompts (rows) for fp32 then each variant (columns).");
        return sb.ToString();
    }

    private static JsonObject Json(QualityReportOptions o, List<VariantQuality> rows)
    {
        var variants = new JsonArray();
        foreach (var r in rows)
            variants.Add(new JsonObject
            {
                ["name"] = r.Name,
                ["file"] = r.File,
                ["file_bytes"] = r.File != null ? r.FileBytes : null,
                ["images"] = r.Images,
                ["psnr_mean"] = double.IsNaN(r.MeanPsnr) ? null : Math.Round(r.MeanPsnr, 4),
                ["psnr_median"] = double.IsNaN(r.MedianPsnr) ? null : Math.Round(r.MedianPsnr, 4),
                ["ssim_mean"] = double.IsNaN(r.MeanSsim) ? null : Math.Round(r.MeanSsim, 6),
                ["loaded_rss_bytes"] = r.LoadedRssBytes,
                ["peak_rss_bytes"] = r.PeakRssBytes,
                ["seconds_per_image"] = Math.Round(r.SecondsPerImage, 5),
            });
        return new JsonObject { ["model"] = o.ModelPath, ["prompts"] = o.Prompts.Count, ["variants"] = variants };
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Number(double v, string format) => double.IsNaN(v) ? "-" : v.ToString(format, CultureInfo.InvariantCulture);

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.0} MiB");

    /// <summary>
    /// Returns freed memory to the system (glibc <c>malloc_trim</c>) and resets VmHWM to the current resident size
    /// (Linux 4.0+), so the next variant's peak does not include the previous one's; elsewhere the peak stays
    /// process-wide.
    /// </summary>
    private static void ResetPeakResident()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            MallocTrim(0);
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
