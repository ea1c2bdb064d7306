using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using DiffusionSharp.Models;

namespace DiffusionSharp.Caching;

/// <summary>
/// The hash that ties a cache schedule to a model: for a single-file checkpoint the web UIs' "Model hash" (the first
/// 10 hex digits of the file's SHA-256, <see cref="StableDiffusionModel.Hash"/>); for a diffusers folder the first 10
/// hex digits of a SHA-256 over the files of its <c>unet/</c> folder (name and content, in ordinal name order), since
/// the schedule depends on the UNet alone. Computed once per loaded model.
/// </summary>
public static class ModelFingerprint
{
    private static readonly ConditionalWeakTable<StableDiffusionModel, string> Cache = [];

    public static string Of(StableDiffusionModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Cache.GetValue(model, Compute);
    }

    private static string Compute(StableDiffusionModel model)
    {
        if (model.Hash is { } fileHash) return fileHash;
        string unet = Path.Combine(model.Source, "unet");
        if (!Directory.Exists(unet))
            throw new InvalidOperationException($"'{model.Source}' is neither a checkpoint file nor a folder with unet/: it has no fingerprint.");
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var files = Directory.GetFiles(unet);
        Array.Sort(files, StringComparer.Ordinal);
        var buffer = new byte[1 << 20];
        foreach (string file in files)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetFileName(file) + "\n"));
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            int read;
            while ((read = stream.Read(buffer)) > 0) sha.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..10];
    }
}
