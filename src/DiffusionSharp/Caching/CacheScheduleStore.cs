using System.Globalization;
using DiffusionSharp.Models;

namespace DiffusionSharp.Caching;

/// <summary>
/// Where <c>--cache auto</c> keeps the schedules it profiles: beside the model (in <c>FOLDER/cache-schedules/</c> for a
/// diffusers folder, <c>FILE.cache-schedules/</c> beside a single file), or, when that cannot be written, in the user's
/// cache folder (<c>$XDG_CACHE_HOME</c> or <c>~/.cache</c>, the local application data folder on Windows) under
/// <c>diffusionsharp/cache-schedules/NAME-HASH/</c>. One file per sampler, spacing, step count and delta.
/// </summary>
public static class CacheScheduleStore
{
    public static string FileName(ScheduleTarget target, double delta)
        => string.Create(CultureInfo.InvariantCulture, $"{target.Sampler}.{target.Scheduler}.{target.Steps}steps.delta{delta:0.######}.json");

    public static string BesideModel(StableDiffusionModel model)
        => Directory.Exists(model.Source) ? Path.Combine(model.Source, "cache-schedules") : model.Source + ".cache-schedules";

    /// <summary>The user cache folder for <paramref name="target"/>'s model.</summary>
    public static string UserFolder(ScheduleTarget target)
    {
        string? root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(root))
            root = OperatingSystem.IsWindows()
                ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        string name = string.Concat(target.ModelName.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        return Path.Combine(root, "diffusionsharp", "cache-schedules", $"{name}-{target.ModelHash}");
    }

    /// <summary>The places to look, in order: beside the model, then the user cache folder.</summary>
    public static IReadOnlyList<string> Candidates(StableDiffusionModel model, ScheduleTarget target, double delta, string? userFolder = null)
    {
        string file = FileName(target, delta);
        return [Path.Combine(BesideModel(model), file), Path.Combine(userFolder ?? UserFolder(target), file)];
    }

    /// <summary>
    /// Writes <paramref name="schedule"/> to the first of <paramref name="candidates"/> whose folder can be created and
    /// written; returns that path, or throws the last failure when none can.
    /// </summary>
    public static string Save(CacheSchedule schedule, IReadOnlyList<string> candidates)
    {
        Exception? last = null;
        foreach (string path in candidates)
        {
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                CacheScheduleFile.Write(path, schedule);
                return path;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                last = e;
            }
        }
        throw new IOException($"Cannot store the cache schedule in any of: {string.Join(", ", candidates)} ({last?.Message}).", last);
    }
}
