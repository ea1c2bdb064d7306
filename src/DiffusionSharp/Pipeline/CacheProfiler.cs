using DiffusionSharp.Caching;
using DiffusionSharp.Evaluation;
using System.Diagnostics;

namespace DiffusionSharp.Pipeline;

/// <summary>What profiling measured and derived: the change curves and one schedule per delta.</summary>
public sealed record CacheProfile(ChangeCurves Curves, IReadOnlyList<CacheSchedule> Schedules, TimeSpan Elapsed);

/// <summary>Profiling progress: pass 1 measures the change curves, pass 2 (with scale/shift) fits the corrections.</summary>
public readonly record struct CacheProfileProgress(int Pass, int Passes, int Prompt, int Prompts, GenerationProgress Image);

/// <summary>
/// Block-caching profiles (docs/CACHING.md): runs a prompt set uncached with the settings of a template request,
/// measures every hooked block's change curve (<see cref="ChangeCurveRecorder"/>), derives the schedule of each delta
/// (<see cref="ScheduleDerivation"/>), and, when asked, runs the set a second time to fit each reused residual's
/// per-channel scale/shift by least squares (<see cref="ScaleShiftFitter"/>).
/// </summary>
public static class CacheProfiler
{
    public static CacheProfile Profile(TextToImagePipeline pipeline, GenerationRequest template, IReadOnlyList<SeededPrompt> prompts,
        IReadOnlyList<double> deltas, bool fitScaleShift, IProgress<CacheProfileProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(deltas);
        if (prompts.Count == 0) throw new ArgumentException("The profiling prompt set is empty.", nameof(prompts));
        if (deltas.Count == 0) throw new ArgumentException("No delta to derive a schedule for.", nameof(deltas));
        foreach (double d in deltas)
            if (!(d >= 0) || !double.IsFinite(d)) throw new InvalidSettingException($"A cache threshold must be a finite number >= 0, got {d}.", "cache-threshold");

        var clock = Stopwatch.StartNew();
        int passes = fitScaleShift ? 2 : 1;
        var target = pipeline.CacheTargetFor(template with { Cache = null });
        var recorder = new ChangeCurveRecorder();
        ResolvedSettings settings = RunAll(pipeline, template, prompts, recorder, 1, passes, progress, cancellationToken);
        var curves = recorder.Curves();

        var conditions = new ProfileConditions(prompts.Count, settings.Width, settings.Height, settings.CfgScale);
        var scheduleTarget = target.ScheduleTarget();
        IReadOnlyList<CacheSchedule> schedules = deltas.Select(d => ScheduleDerivation.Derive(curves, d, scheduleTarget, conditions)).ToArray();
        if (fitScaleShift)
        {
            var fitter = new ScaleShiftFitter(schedules);
            RunAll(pipeline, template, prompts, fitter, 2, passes, progress, cancellationToken);
            schedules = fitter.Fitted();
        }
        return new CacheProfile(curves, schedules, clock.Elapsed);
    }

    private static ResolvedSettings RunAll(TextToImagePipeline pipeline, GenerationRequest template, IReadOnlyList<SeededPrompt> prompts,
        BlockCaching recorder, int pass, int passes, IProgress<CacheProfileProgress>? progress, CancellationToken cancellationToken)
    {
        ResolvedSettings? settings = null;
        for (int i = 0; i < prompts.Count; i++)
        {
            var request = template with
            {
                Prompt = prompts[i].Prompt,
                NegativePrompt = prompts[i].NegativePrompt,
                Seed = prompts[i].Seed,
                BatchCount = 1,
                Cache = recorder,
            };
            int index = i;
            var imageProgress = progress is null ? null : new Relay(p => progress.Report(new CacheProfileProgress(pass, passes, index, prompts.Count, p)));
            settings = pipeline.Generate(request, imageProgress, cancellationToken).Settings;
        }
        return settings!;
    }

    /// <summary>
    /// The schedule <c>--cache auto</c> uses: one stored earlier for this model, sampler, spacing, steps and delta
    /// (<see cref="CacheScheduleStore"/>), or a new profile of <see cref="BuiltInPrompts"/> with scale/shift, stored
    /// for next time. Returns the schedule, where it is stored, and whether it was profiled now.
    /// </summary>
    public static (CacheSchedule Schedule, string Path, bool Profiled) GetOrProfile(TextToImagePipeline pipeline, GenerationRequest request,
        double delta, string? userFolder = null, IProgress<CacheProfileProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(request);
        if (!(delta >= 0) || !double.IsFinite(delta))
            throw new InvalidSettingException($"--cache-threshold must be a finite number >= 0, got {delta}.", "cache-threshold");
        var target = pipeline.CacheTargetFor(request with { Cache = null });
        var scheduleTarget = target.ScheduleTarget();
        var candidates = CacheScheduleStore.Candidates(pipeline.Model, scheduleTarget, delta, userFolder);
        foreach (string path in candidates)
        {
            if (!File.Exists(path)) continue;
            try
            {
                var stored = CacheScheduleFile.Read(path);
                new ScheduledCaching(stored, source: path).Prepare(target);
                return (stored, path, false);
            }
            catch (CacheScheduleException)
            {
                // A stale or damaged file: profile again and overwrite it.
            }
        }
        var prompts = BuiltInPrompts.All.Select((p, i) => new SeededPrompt(p, i)).ToArray();
        var profile = Profile(pipeline, request with { Cache = null }, prompts, [delta], fitScaleShift: true, progress, cancellationToken);
        var schedule = profile.Schedules[0];
        return (schedule, CacheScheduleStore.Save(schedule, candidates), true);
    }

    private sealed class Relay(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
