using System.Security.Cryptography;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Models.Clip;
using DiffusionSharp.Models.Unet;
using DiffusionSharp.Models.Vae;
using DiffusionSharp.Sampling;
using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Models;

/// <summary>
/// A loaded text-to-image model: tokenizer, text encoder, UNet, VAE, the training noise schedule and the settings
/// the model is meant to be used with. Load one with <see cref="ModelLoader.Load"/>.
/// </summary>
public sealed class StableDiffusionModel : IDisposable
{
    private string? _hash;

    /// <summary>The file or folder it was loaded from.</summary>
    public required string Source { get; init; }
    /// <summary>Short name for metadata: the file name without extension, or the folder name.</summary>
    public required string Name { get; init; }
    public required ModelFamilyInfo Family { get; init; }
    public required ClipTokenizer Tokenizer { get; init; }
    public required ClipTextModel TextEncoder { get; init; }
    public required Unet2DConditionModel Unet { get; init; }
    public required AutoencoderKL Vae { get; init; }
    public required SchedulerConfig Scheduler { get; init; }
    public required ModelDefaults Defaults { get; init; }
    /// <summary>Things worth telling the user that did not stop loading (unused tensors, assumptions made).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }
    public TimeSpan LoadTime { get; init; }

    /// <summary>True when the UNet takes the guidance scale as an input (distilled guidance: one pass per step).</summary>
    public bool HasGuidanceEmbedding => Unet.Config.TimeCondProjDim is not null;

    /// <summary>Pixels per latent along each side (8 for SD).</summary>
    public int LatentScale => Vae.Config.DownscaleFactor;

    public NoiseSchedule CreateNoiseSchedule() => Scheduler.CreateSchedule();

    /// <summary>
    /// The web UIs' "Model hash" of a single-file checkpoint: the first 10 hex digits of its SHA-256 (computed once,
    /// on first use; null for folders).
    /// </summary>
    public string? Hash
    {
        get
        {
            if (_hash != null || !File.Exists(Source)) return _hash;
            using var stream = new FileStream(Source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            _hash = Convert.ToHexStringLower(SHA256.HashData(stream))[..10];
            return _hash;
        }
    }

    public void Dispose()
    {
        TextEncoder.Dispose();
        Unet.Dispose();
        Vae.Dispose();
    }
}
