using System.Text.Json;
using DiffusionSharp.IO;

namespace DiffusionSharp.Quantization;

/// <summary>A prompt with the seed it is generated with, and the file name a report gives its image.</summary>
public sealed record SeededPrompt(string Prompt, long Seed, string File);

/// <summary>
/// Prompt lists for calibration and reports: a text file (one prompt per line, blank lines and lines starting with
/// '#' skipped; prompt i gets seed i) or a JSON array of objects with <c>prompt</c> and optional <c>seed</c> and
/// <c>file</c> (the format <c>tools/train/evaluate.py prompts</c> writes, so the shipped model's classifier can score
/// the images: <c>tools/eval/score.py --prompts FILE --images DIR</c>).
/// </summary>
public static class PromptSet
{
    private const long MaxBytes = 16 << 20;

    public static IReadOnlyList<SeededPrompt> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Prompt file '{path}' does not exist.", path);
        if (new FileInfo(path).Length > MaxBytes) throw Bad(path, $"Prompt file '{path}' is larger than {MaxBytes >> 20} MB.");
        string text = File.ReadAllText(path);
        var prompts = path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? FromJson(path, text) : FromLines(text);
        if (prompts.Count == 0) throw Bad(path, $"Prompt file '{path}' holds no prompts.");
        return prompts;
    }

    private static List<SeededPrompt> FromLines(string text)
    {
        var prompts = new List<SeededPrompt>();
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            prompts.Add(new SeededPrompt(line, prompts.Count, $"{prompts.Count:0000}.png"));
        }
        return prompts;
    }

    private static List<SeededPrompt> FromJson(string path, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw Bad(path, $"Prompt file '{path}': expected a JSON array.");
            var prompts = new List<SeededPrompt>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                int i = prompts.Count;
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("prompt", out var p) || p.ValueKind != JsonValueKind.String)
                    throw Bad(path, $"Prompt file '{path}': entry {i} has no \"prompt\" string.");
                long seed = e.TryGetProperty("seed", out var s) && s.TryGetInt64(out long v) ? v : i;
                string file = e.TryGetProperty("file", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : $"{i:0000}.png";
                if (file.Length == 0 || file.Contains('/') || file.Contains('\\') || file.Contains("..") || !file.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                    throw Bad(path, $"Prompt file '{path}': entry {i} has file name '{file}'; expected a plain NAME.png.");
                prompts.Add(new SeededPrompt(p.GetString()!, seed, file));
            }
            return prompts;
        }
        catch (JsonException e)
        {
            throw new FileFormatException($"Prompt file '{path}' is not valid JSON: {e.Message}", e) { FilePath = path };
        }
    }

    private static FileFormatException Bad(string path, string message) => new(message) { FilePath = path };
}
