using DiffusionSharp.Models;
using DiffusionSharp.Sampling;

namespace DiffusionSharp.Pipeline;

/// <summary>A request with the model's defaults filled in and every value checked.</summary>
public sealed record ResolvedSettings(
    int Width, int Height, int Steps, double CfgScale, SamplerInfo Sampler, Scheduler Scheduler, double? Eta, int ClipSkip)
{
    /// <summary>
    /// Applies <paramref name="model"/>'s defaults to the unset fields of <paramref name="request"/> and validates
    /// everything; an invalid value throws <see cref="InvalidSettingException"/> naming the option.
    /// </summary>
    public static ResolvedSettings Resolve(GenerationRequest request, StableDiffusionModel model)
    {
        CheckModelIndependent(request);
        var d = model.Defaults;
        ArgumentNullException.ThrowIfNull(request.Prompt, "prompt");
        int width = request.Width ?? d.Width, height = request.Height ?? d.Height;
        int multiple = model.LatentScale;
        Check(width >= multiple && width <= 8192 && width % multiple == 0, "width", $"Width {width} must be a multiple of {multiple} between {multiple} and 8192.");
        Check(height >= multiple && height <= 8192 && height % multiple == 0, "height", $"Height {height} must be a multiple of {multiple} between {multiple} and 8192.");
        int steps = request.Steps ?? d.Steps;
        Check(steps is >= 1 and <= 1000, "steps", $"Steps must be between 1 and 1000, got {steps}.");
        double cfg = request.CfgScale ?? d.CfgScale;
        Check(double.IsFinite(cfg) && cfg >= 0 && cfg <= 100, "cfg-scale", $"CFG scale must be a number between 0 and 100, got {cfg}.");
        string samplerName = request.Sampler ?? d.Sampler;
        if (!SamplerRegistry.TryParse(samplerName, out var selection))
            throw new InvalidSettingException($"Unknown sampler '{samplerName}'. Valid: {string.Join(", ", SamplerRegistry.All.Select(s => s.Name))} (web-UI labels such as \"Euler a\" and \"DPM++ 2M Karras\" work too).", "sampling-method");
        Scheduler? explicitScheduler = null;
        string? schedulerName = request.Scheduler ?? (request.Sampler is null ? d.Scheduler : null);
        if (schedulerName is not null)
        {
            if (!SchedulerNames.TryParse(schedulerName, out var s))
                throw new InvalidSettingException($"Unknown scheduler '{schedulerName}'. Valid: {string.Join(", ", SchedulerNames.All)}.", "scheduler");
            explicitScheduler = s;
        }
        var scheduler = selection.ResolveScheduler(explicitScheduler);
        CheckSteps(steps, scheduler, model.Scheduler.TrainTimesteps);
        Check(request.BatchCount is >= 1 and <= 10_000, "batch-count", $"Batch count must be between 1 and 10000, got {request.BatchCount}.");
        int layers = model.TextEncoder.Config.NumHiddenLayers;
        Check(request.ClipSkip >= 1 && request.ClipSkip <= layers, "clip-skip", $"Clip skip must be between 1 and {layers} (the text encoder's layers), got {request.ClipSkip}.");
        Check(request.Eta is null || (double.IsFinite(request.Eta.Value) && request.Eta >= 0), "eta", $"Eta must be >= 0, got {request.Eta}.");
        return new ResolvedSettings(width, height, steps, cfg, selection.Sampler, scheduler, request.Eta, request.ClipSkip);
    }

    /// <summary>
    /// The checks that need no model (ranges, sampler and scheduler names), so a front end can reject a bad request
    /// before spending seconds loading weights. <see cref="Resolve"/> runs them too.
    /// </summary>
    public static void CheckModelIndependent(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request.Prompt, "prompt");
        // The multiple a size must be depends on the VAE (8 for SD, 4 for the shipped model): Resolve checks that.
        Check(request.Width is null or (>= 1 and <= 8192), "width", $"Width {request.Width} must be between 1 and 8192 pixels.");
        Check(request.Height is null or (>= 1 and <= 8192), "height", $"Height {request.Height} must be between 1 and 8192 pixels.");
        Check(request.Steps is null or (>= 1 and <= 1000), "steps", $"Steps must be between 1 and 1000, got {request.Steps}.");
        Check(request.CfgScale is null || (double.IsFinite(request.CfgScale.Value) && request.CfgScale is >= 0 and <= 100), "cfg-scale",
            $"CFG scale must be a number between 0 and 100, got {request.CfgScale}.");
        if (request.Sampler is { } sampler && !SamplerRegistry.TryParse(sampler, out _))
            throw new InvalidSettingException($"Unknown sampler '{sampler}'. Valid: {string.Join(", ", SamplerRegistry.All.Select(s => s.Name))} (web-UI labels such as \"Euler a\" and \"DPM++ 2M Karras\" work too).", "sampling-method");
        if (request.Scheduler is { } scheduler && !SchedulerNames.TryParse(scheduler, out _))
            throw new InvalidSettingException($"Unknown scheduler '{scheduler}'. Valid: {string.Join(", ", SchedulerNames.All)}.", "scheduler");
        Check(request.BatchCount is >= 1 and <= 10_000, "batch-count", $"Batch count must be between 1 and 10000, got {request.BatchCount}.");
        Check(request.ClipSkip >= 1, "clip-skip", $"Clip skip must be 1 or more, got {request.ClipSkip}.");
        Check(request.Eta is null || (double.IsFinite(request.Eta.Value) && request.Eta >= 0), "eta", $"Eta must be >= 0, got {request.Eta}.");
    }

    /// <summary>The step counts <see cref="SigmaSchedules"/> accepts for each spacing, as settings errors.</summary>
    private static void CheckSteps(int steps, Scheduler scheduler, int trainSteps)
    {
        string name = SchedulerNames.Name(scheduler);
        Check(steps <= trainSteps, "steps", $"Steps must be at most the model's {trainSteps} training timesteps, got {steps}.");
        Check(scheduler != Scheduler.Lcm || steps <= SigmaSchedules.LcmOriginalSteps, "steps",
            $"The {name} schedule takes at most {SigmaSchedules.LcmOriginalSteps} steps (the grid LCM was distilled on), got {steps}.");
        Check(scheduler != Scheduler.DdimUniform || steps >= 2, "steps",
            $"The {name} schedule (ddim's default) needs at least 2 steps; for one step use ddim_trailing or another --scheduler (simple, discrete).");
    }

    private static void Check(bool ok, string option, string message)
    {
        if (!ok) throw new InvalidSettingException(message, option);
    }
}
