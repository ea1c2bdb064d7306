namespace DiffusionSharp.Sampling.Rng;

/// <summary>Names, A1111 infotext labels and factories for <see cref="RngType"/>.</summary>
public static class RngTypes
{
    /// <summary><see cref="RngType.Cuda"/>, as stable-diffusion.cpp defaults.</summary>
    public const RngType Default = RngType.Cuda;

    /// <summary>The sd.cpp name: <c>cuda</c> or <c>cpu</c>.</summary>
    public static string Name(RngType type) => type switch
    {
        RngType.Cuda => "cuda",
        RngType.Cpu => "cpu",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a defined RNG type."),
    };

    /// <summary>
    /// The A1111 infotext value: "NV" (its CPU port of the CUDA generator, which this one is) or "CPU". A1111 writes the
    /// field only for those two; its own default "GPU" is the same noise as "NV" on NVIDIA cards.
    /// </summary>
    public static string WebUiLabel(RngType type) => type switch
    {
        RngType.Cuda => "NV",
        RngType.Cpu => "CPU",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a defined RNG type."),
    };

    /// <summary>Parses <c>cuda</c>/<c>cpu</c> or the A1111 values "GPU", "NV" (both CUDA) and "CPU", ignoring case.</summary>
    /// <exception cref="ArgumentException">The name is unknown; the message lists the valid names.</exception>
    public static RngType Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "cuda" or "gpu" or "nv" => RngType.Cuda,
            "cpu" => RngType.Cpu,
            _ => throw new ArgumentException(
                $"Unknown RNG '{name}'. Valid values: cuda (CUDA torch.randn, the default; also GPU and NV), cpu (CPU torch.randn). " +
                "stable-diffusion.cpp's std_default is not supported: it differs between C++ standard libraries.", nameof(name)),
        };
    }

    /// <summary>A fresh generator of <paramref name="type"/> seeded with <paramref name="seed"/>.</summary>
    public static INoiseGenerator Create(RngType type, ulong seed) => type switch
    {
        RngType.Cuda => new PhiloxGenerator(seed),
        RngType.Cpu => new TorchCpuGenerator(seed),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a defined RNG type."),
    };
}
