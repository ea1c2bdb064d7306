using System.Text.Json;
using DiffusionSharp.Models.Configs;

namespace DiffusionSharp.Models.Checkpoints;

/// <summary>
/// Generation settings a model is meant to be used with, applied where a request leaves a field unset.
/// SD 1.x gets stable-diffusion.cpp's and the web UIs' defaults; a model folder may state its own in
/// <c>diffusionsharp.json</c> (the shipped model does: its distilled step count, sampler and guidance).
/// </summary>
public sealed record ModelDefaults
{
    public const string FileName = "diffusionsharp.json";

    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int Steps { get; init; } = 20;
    public double CfgScale { get; init; } = 7.0;
    public string Sampler { get; init; } = "euler_a";
    public string Scheduler { get; init; } = "discrete";

    /// <summary>
    /// How a UNet with a guidance embedding (<c>time_cond_proj_dim</c>) is fed the CFG scale w: it receives
    /// w - offset, and the engine runs one conditional pass per step instead of two (guidance is distilled in).
    /// </summary>
    public double GuidanceEmbeddingOffset { get; init; }

    public static ModelDefaults Sd15 { get; } = new();

    public static ModelDefaults FromJson(string json, string sourceName, ModelDefaults fallback)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new ConfigException(sourceName, "(file)", $"is not valid JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new ConfigException(sourceName, "(file)", "must be a JSON object");
        var d = fallback;
        int Int(string key, int current, int min, int max)
        {
            if (!root.TryGetProperty(key, out var v)) return current;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < min || i > max)
                throw new ConfigException(sourceName, key, $"must be an integer in [{min}, {max}]");
            return i;
        }
        double Double(string key, double current)
        {
            if (!root.TryGetProperty(key, out var v)) return current;
            if (v.ValueKind != JsonValueKind.Number || !double.IsFinite(v.GetDouble())) throw new ConfigException(sourceName, key, "must be a number");
            return v.GetDouble();
        }
        string Text(string key, string current)
        {
            if (!root.TryGetProperty(key, out var v)) return current;
            if (v.ValueKind != JsonValueKind.String) throw new ConfigException(sourceName, key, "must be a string");
            return v.GetString()!;
        }
        return d with
        {
            Width = Int("width", d.Width, 8, 8192),
            Height = Int("height", d.Height, 8, 8192),
            Steps = Int("steps", d.Steps, 1, 1000),
            CfgScale = Double("cfg_scale", d.CfgScale),
            Sampler = Text("sampler", d.Sampler),
            Scheduler = Text("scheduler", d.Scheduler),
            GuidanceEmbeddingOffset = Double("guidance_embedding_offset", d.GuidanceEmbeddingOffset),
        };
    }
}
