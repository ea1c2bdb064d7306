using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffusionSharp.IO;

namespace DiffusionSharp.Caching;

/// <summary>
/// Reads and writes <see cref="CacheSchedule"/> as JSON (docs/CACHING.md has an example):
/// <code>
/// { "format": "diffusionsharp.cache-schedule", "version": 1,
///   "model": "emoji-mobile", "model_hash": "3f0c...", "sampler": "ddim_trailing", "scheduler": "simple",
///   "steps": 20, "evaluations": 20, "delta": 0.1,
///   "profile": { "prompts": 32, "width": 64, "height": 64, "cfg_scale": 3 },
///   "blocks": [ { "key": "down_blocks.0.resnets.0", "channels": 96, "recompute": [0, 4, 9, 15],
///                 "change": [null, 0.21, ...],
///                 "scale_shift": [ { "evaluation": 1, "scale": [...], "shift": [...] }, ... ] }, ... ] }
/// </code>
/// Every field is checked on reading; anything wrong is a <see cref="CacheScheduleException"/> naming the file and the field.
/// </summary>
public static class CacheScheduleFile
{
    public const string FormatName = "diffusionsharp.cache-schedule";
    public const int FormatVersion = 1;

    /// <summary>Files above this size are refused before parsing (a schedule of SD 1.5 at 50 steps with scale/shift is ~30 MB).</summary>
    public const long MaxFileBytes = 256L << 20;

    private const int MaxBlocks = 4096;
    private const int MaxChannels = 65536;
    private const int MaxEvaluations = 2000;

    public static CacheSchedule Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Cache schedule '{path}' does not exist.", path);
        long length = new FileInfo(path).Length;
        if (length > MaxFileBytes)
            throw new CacheScheduleException(path, $"{length} bytes, more than the {MaxFileBytes >> 20} MB a schedule may have.");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses schedule JSON; <paramref name="source"/> names it in errors.</summary>
    public static CacheSchedule Parse(ReadOnlySpan<byte> json, string source)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new CacheScheduleException(source, $"not valid JSON ({e.Message})", e);
        }
        using (document)
            return new Reader(source).Schedule(document.RootElement);
    }

    /// <summary>Writes <paramref name="schedule"/> to <paramref name="path"/> atomically (a reader never sees half a file).</summary>
    public static void Write(string path, CacheSchedule schedule)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(ToJson(schedule));
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    public static string ToJson(CacheSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            var t = schedule.Target;
            w.WriteStartObject();
            w.WriteString("format", FormatName);
            w.WriteNumber("version", FormatVersion);
            w.WriteString("model", t.ModelName);
            w.WriteString("model_hash", t.ModelHash);
            w.WriteString("sampler", t.Sampler);
            w.WriteString("scheduler", t.Scheduler);
            w.WriteNumber("steps", t.Steps);
            w.WriteNumber("evaluations", t.Evaluations);
            if (schedule.Delta is { } delta) w.WriteNumber("delta", delta);
            if (schedule.Profile is { } p)
            {
                w.WriteStartObject("profile");
                w.WriteNumber("prompts", p.Prompts);
                w.WriteNumber("width", p.Width);
                w.WriteNumber("height", p.Height);
                w.WriteNumber("cfg_scale", p.CfgScale);
                w.WriteEndObject();
            }
            w.WriteStartArray("blocks");
            foreach (var block in schedule.Blocks)
            {
                w.WriteStartObject();
                w.WriteString("key", block.Key);
                w.WriteNumber("channels", block.Channels);
                w.WritePropertyName("recompute");
                w.WriteRawValue("[" + string.Join(", ", Enumerable.Range(0, block.Recompute.Length).Where(e => block.Recompute[e])) + "]");
                if (block.Change is { } change)
                {
                    w.WritePropertyName("change");
                    w.WriteRawValue("[" + string.Join(", ", change.Select(c => double.IsNaN(c) ? "null" : c.ToString("R", CultureInfo.InvariantCulture))) + "]");
                }
                if (block.Corrections.Any(c => c is not null))
                {
                    w.WriteStartArray("scale_shift");
                    for (int e = 0; e < block.Corrections.Length; e++)
                    {
                        if (block.Corrections[e] is not { } correction) continue;
                        w.WriteStartObject();
                        w.WriteNumber("evaluation", e);
                        w.WritePropertyName("scale");
                        w.WriteRawValue(FloatArray(correction.Scale));
                        w.WritePropertyName("shift");
                        w.WriteRawValue(FloatArray(correction.Shift));
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>The shortest decimal that round-trips each float.</summary>
    private static string FloatArray(float[] values)
        => "[" + string.Join(", ", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]";

    /// <summary>Checked access to the JSON, every error naming the file and the field.</summary>
    private sealed class Reader(string source)
    {
        public CacheSchedule Schedule(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object) throw Error("expected a JSON object at the top level.");
            string format = String(root, "format");
            if (format != FormatName) throw Error($"\"format\" is '{format}', not '{FormatName}': not a cache schedule.");
            int version = Int(root, "version", 1, int.MaxValue);
            if (version != FormatVersion) throw Error($"format version {version} is not supported (this build reads version {FormatVersion}).");
            int steps = Int(root, "steps", 1, MaxEvaluations);
            int evaluations = Int(root, "evaluations", steps, MaxEvaluations);
            var target = new ScheduleTarget(String(root, "model"), String(root, "model_hash"), String(root, "sampler"), String(root, "scheduler"), steps, evaluations);
            double? delta = null;
            if (root.TryGetProperty("delta", out var d) && d.ValueKind != JsonValueKind.Null)
            {
                delta = Number(d, "delta");
                if (!(delta >= 0)) throw Error($"\"delta\" must not be negative, got {delta}.");
            }
            ProfileConditions? profile = null;
            if (root.TryGetProperty("profile", out var p) && p.ValueKind != JsonValueKind.Null)
            {
                if (p.ValueKind != JsonValueKind.Object) throw Error("\"profile\" must be an object.");
                profile = new ProfileConditions(Int(p, "prompts", 1, int.MaxValue, "profile."), Int(p, "width", 1, 65536, "profile."),
                    Int(p, "height", 1, 65536, "profile."), Number(Get(p, "cfg_scale", "profile."), "profile.cfg_scale"));
            }
            var blocksElement = Get(root, "blocks");
            if (blocksElement.ValueKind != JsonValueKind.Array) throw Error("\"blocks\" must be an array.");
            int count = blocksElement.GetArrayLength();
            if (count is 0 or > MaxBlocks) throw Error($"\"blocks\" holds {count} entries; a schedule has 1 to {MaxBlocks}.");
            var blocks = new List<BlockSchedule>(count);
            var keys = new HashSet<string>(StringComparer.Ordinal);
            foreach (var b in blocksElement.EnumerateArray())
            {
                string at = $"blocks[{blocks.Count}].";
                if (b.ValueKind != JsonValueKind.Object) throw Error($"{at[..^1]} must be an object.");
                var block = Block(b, at, evaluations);
                if (!keys.Add(block.Key)) throw Error($"block '{block.Key}' appears twice.");
                blocks.Add(block);
            }
            return new CacheSchedule { Target = target, Delta = delta, Profile = profile, Blocks = blocks };
        }

        private BlockSchedule Block(JsonElement b, string at, int evaluations)
        {
            string key = String(b, "key", at);
            int channels = Int(b, "channels", 1, MaxChannels, at);
            var recompute = new bool[evaluations];
            var steps = Get(b, "recompute", at);
            if (steps.ValueKind != JsonValueKind.Array || steps.GetArrayLength() == 0)
                throw Error($"{at}recompute must be a non-empty array of evaluation indices.");
            int previous = -1;
            foreach (var s in steps.EnumerateArray())
            {
                int e = Index(s, $"{at}recompute", evaluations);
                if (e <= previous) throw Error($"{at}recompute must list evaluations in increasing order without repeats (got {e} after {previous}).");
                recompute[e] = true;
                previous = e;
            }
            if (!recompute[0]) throw Error($"{at}recompute must start with 0: a block has nothing to reuse before it first runs.");

            double[]? change = null;
            if (b.TryGetProperty("change", out var c) && c.ValueKind != JsonValueKind.Null)
            {
                if (c.ValueKind != JsonValueKind.Array || c.GetArrayLength() != evaluations)
                    throw Error($"{at}change must be an array of {evaluations} numbers (null at evaluation 0).");
                change = new double[evaluations];
                int e = 0;
                foreach (var v in c.EnumerateArray())
                {
                    change[e] = v.ValueKind == JsonValueKind.Null ? double.NaN : Number(v, $"{at}change[{e}]");
                    if (change[e] < 0) throw Error($"{at}change[{e}] is negative.");
                    e++;
                }
            }

            var corrections = new ChannelCorrection?[evaluations];
            if (b.TryGetProperty("scale_shift", out var ss) && ss.ValueKind != JsonValueKind.Null)
            {
                if (ss.ValueKind != JsonValueKind.Array) throw Error($"{at}scale_shift must be an array.");
                int n = 0;
                foreach (var entry in ss.EnumerateArray())
                {
                    string where = $"{at}scale_shift[{n++}].";
                    if (entry.ValueKind != JsonValueKind.Object) throw Error($"{where[..^1]} must be an object.");
                    int e = Index(Get(entry, "evaluation", where), $"{where}evaluation", evaluations);
                    if (recompute[e]) throw Error($"{where}evaluation {e} is a recompute step of '{key}'; only reused residuals are corrected.");
                    if (corrections[e] is not null) throw Error($"{where}evaluation {e} of '{key}' is corrected twice.");
                    corrections[e] = new ChannelCorrection(Floats(Get(entry, "scale", where), $"{where}scale", channels),
                        Floats(Get(entry, "shift", where), $"{where}shift", channels));
                }
            }
            return new BlockSchedule(key, channels, recompute, change, corrections);
        }

        private float[] Floats(JsonElement array, string name, int length)
        {
            if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() != length)
                throw Error($"{name} must be an array of {length} numbers (one per channel).");
            var values = new float[length];
            int i = 0;
            foreach (var v in array.EnumerateArray())
            {
                double x = Number(v, $"{name}[{i}]");
                if (!float.IsFinite((float)x)) throw Error($"{name}[{i}] = {x} is outside the float range.");
                values[i++] = (float)x;
            }
            return values;
        }

        private int Index(JsonElement value, string name, int evaluations)
        {
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int e) || e < 0 || e >= evaluations)
                throw Error($"{name} holds {Describe(value)}, not an evaluation index from 0 to {evaluations - 1}.");
            return e;
        }

        private JsonElement Get(JsonElement obj, string key, string at = "")
        {
            if (!obj.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
                throw Error($"\"{at}{key}\" is missing.");
            return value;
        }

        private string String(JsonElement obj, string key, string at = "")
        {
            var value = Get(obj, key, at);
            string? s = null;
            try
            {
                if (value.ValueKind == JsonValueKind.String) s = value.GetString();
            }
            catch (InvalidOperationException)
            {
                throw Error($"\"{at}{key}\" holds an escaped character that is not valid UTF-16.");
            }
            if (s is not { Length: > 0 and <= 1024 })
                throw Error($"\"{at}{key}\" must be a non-empty string, got {Describe(value)}.");
            return s;
        }

        private int Int(JsonElement obj, string key, int min, int max, string at = "")
        {
            var value = Get(obj, key, at);
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int i) || i < min || i > max)
                throw Error($"\"{at}{key}\" must be a whole number from {min} to {max}, got {Describe(value)}.");
            return i;
        }

        private double Number(JsonElement value, string name)
        {
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double x) || !double.IsFinite(x))
                throw Error($"\"{name}\" must be a finite number, got {Describe(value)}.");
            return x;
        }

        private static string Describe(JsonElement value)
        {
            string text = value.ValueKind switch
            {
                JsonValueKind.Object => "an object",
                JsonValueKind.Array => "an array",
                _ => value.GetRawText(),
            };
            return text.Length > 40 ? text[..40] + "..." : text;
        }

        private CacheScheduleException Error(string message) => new(source, message);
    }
}
