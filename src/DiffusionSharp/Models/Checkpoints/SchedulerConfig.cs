using System.Text.Json;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Sampling;

namespace DiffusionSharp.Models.Checkpoints;

/// <summary>
/// The training noise schedule and prediction type of a model: diffusers' <c>scheduler/scheduler_config.json</c>
/// (only the fields that define the model, not the sampler: the engine picks samplers itself).
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>SD 1.x: scaled_linear betas 0.00085..0.012 over 1000 steps, epsilon prediction.</summary>
    public static SchedulerConfig Sd15 { get; } = new();

    public string BetaSchedule { get; init; } = "scaled_linear";
    public double BetaStart { get; init; } = 0.00085;
    public double BetaEnd { get; init; } = 0.012;
    public int TrainTimesteps { get; init; } = 1000;
    public ModelPrediction Prediction { get; init; } = ModelPrediction.Epsilon;

    public NoiseSchedule CreateSchedule() => BetaSchedule switch
    {
        "scaled_linear" => NoiseSchedule.ScaledLinear(BetaStart, BetaEnd, TrainTimesteps),
        "linear" => NoiseSchedule.Linear(BetaStart, BetaEnd, TrainTimesteps),
        _ => throw new InvalidOperationException($"Unsupported beta_schedule '{BetaSchedule}'."),
    };

    public static SchedulerConfig FromJson(string json, string sourceName)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new ConfigException(sourceName, "(file)", $"is not valid JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new ConfigException(sourceName, "(file)", "must be a JSON object");
        var c = new SchedulerConfig();
        if (root.TryGetProperty("beta_schedule", out var bs) && bs.ValueKind == JsonValueKind.String) c = c with { BetaSchedule = bs.GetString()! };
        if (c.BetaSchedule is not ("scaled_linear" or "linear"))
            throw new ConfigException(sourceName, "beta_schedule", $"'{c.BetaSchedule}' is not supported (scaled_linear or linear)");
        if (root.TryGetProperty("trained_betas", out var tb) && tb.ValueKind == JsonValueKind.Array)
            throw new ConfigException(sourceName, "trained_betas", "explicit beta lists are not supported");
        if (root.TryGetProperty("beta_start", out var b0) && b0.ValueKind == JsonValueKind.Number) c = c with { BetaStart = b0.GetDouble() };
        if (root.TryGetProperty("beta_end", out var b1) && b1.ValueKind == JsonValueKind.Number) c = c with { BetaEnd = b1.GetDouble() };
        if (root.TryGetProperty("num_train_timesteps", out var n) && n.ValueKind == JsonValueKind.Number) c = c with { TrainTimesteps = n.GetInt32() };
        if (!(c.BetaStart > 0 && c.BetaEnd > c.BetaStart && c.BetaEnd < 1))
            throw new ConfigException(sourceName, "beta_start", $"betas must satisfy 0 < beta_start < beta_end < 1, got {c.BetaStart} and {c.BetaEnd}");
        if (c.TrainTimesteps is < 2 or > 100_000) throw new ConfigException(sourceName, "num_train_timesteps", $"{c.TrainTimesteps} is out of range");
        if (root.TryGetProperty("prediction_type", out var p) && p.ValueKind == JsonValueKind.String)
        {
            c = c with
            {
                Prediction = p.GetString() switch
                {
                    "epsilon" => ModelPrediction.Epsilon,
                    "v_prediction" => ModelPrediction.VPrediction,
                    var other => throw new ConfigException(sourceName, "prediction_type", $"'{other}' is not supported (epsilon or v_prediction)"),
                },
            };
        }
        return c;
    }
}
