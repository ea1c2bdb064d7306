using System.Text.Json;
using DiffusionSharp.IO;

namespace DiffusionSharp.Evaluation;

/// <summary>One prompt of a calibration, profiling or comparison set: its seed, negative prompt, and the PNG file name its images get.</summary>
public sealed record SeededPrompt(string Prompt, long Seed, string NegativePrompt = "", string? File = null);

/// <summary>
/// Reads the prompt files of <c>diffusion cache-profile</c> and <c>diffusion quantize</c>: either text, one prompt per line (blank lines and lines
/// starting with '#' skipped; line k gets seed <c>baseSeed + k</c>), or a <c>.json</c> list of objects with
/// <c>prompt</c> and optionally <c>seed</c>, <c>negative_prompt</c> and <c>file</c> (a PNG name without folders) — the
/// list <c>tools/train/evaluate.py prompts</c> writes, so the classifier can score the images.
/// </summary>
public static class PromptSet
{
    public const int MaxPrompts = 100_000;
    public const long MaxFileBytes = 64L << 20;

    public static IReadOnlyList<SeededPrompt> Read(string path, long baseSeed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"Prompt file '{path}' does not exist.", path);
        if (new FileInfo(path).Length > MaxFileBytes) throw new FileFormatException($"Prompt file '{path}' is larger than {MaxFileBytes >> 20} MB.") { FilePath = path };
        string text = System.IO.File.ReadAllText(path);
        var prompts = path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? ParseJson(text, path, baseSeed) : ParseLines(text, baseSeed);
        if (prompts.Count == 0) throw new FileFormatException($"Prompt file '{path}' holds no prompt.") { FilePath = path };
        if (prompts.Count > MaxPrompts) throw new FileFormatException($"Prompt file '{path}' holds {prompts.Count} prompts, more than {MaxPrompts}.") { FilePath = path };
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in prompts)
            if (!names.Add(p.File!)) throw new FileFormatException($"Prompt file '{path}': the image name '{p.File}' appears twice.") { FilePath = path };
        return prompts;
    }

    public static List<SeededPrompt> ParseLines(string text, long baseSeed)
    {
        var prompts = new List<SeededPrompt>();
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int k = prompts.Count;
            prompts.Add(new SeededPrompt(line, baseSeed + k, "", $"{k:0000}.png"));
        }
        return prompts;
    }

    public static List<SeededPrompt> ParseJson(string text, string source, long baseSeed)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 4 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new FileFormatException($"Prompt file '{source}': not valid JSON ({e.Message}).", e) { FilePath = source };
        }
        if (root.ValueKind != JsonValueKind.Array)
            throw new FileFormatException($"Prompt file '{source}': expected a JSON list of {{\"prompt\": ..., \"seed\": ...}} objects.") { FilePath = source };
        var prompts = new List<SeededPrompt>();
        foreach (var entry in root.EnumerateArray())
        {
            int k = prompts.Count;
            FileFormatException Error(string what) => new($"Prompt file '{source}', entry {k}: {what}") { FilePath = source };
            if (entry.ValueKind != JsonValueKind.Object) throw Error("expected an object.");
            if (!entry.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.String)
                throw Error("\"prompt\" must be a string.");
            long seed = baseSeed + k;
            if (entry.TryGetProperty("seed", out var s) && (s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out seed) || seed < 0))
                throw Error("\"seed\" must be a whole number >= 0.");
            string negative = "";
            if (entry.TryGetProperty("negative_prompt", out var n))
                negative = n.ValueKind == JsonValueKind.String ? n.GetString()! : throw Error("\"negative_prompt\" must be a string.");
            string file = $"{k:0000}.png";
            if (entry.TryGetProperty("file", out var f))
            {
                file = f.ValueKind == JsonValueKind.String ? f.GetString()! : throw Error("\"file\" must be a string.");
                if (file.Length == 0 || file.Length > 200 || file != Path.GetFileName(file) || file.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0
                    || file is "." or ".." || !file.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                    throw Error($"\"file\" must be a plain .png file name, got '{file}'.");
            }
            prompts.Add(new SeededPrompt(prompt.GetString()!, seed, negative, file));
        }
        return prompts;
    }
}
