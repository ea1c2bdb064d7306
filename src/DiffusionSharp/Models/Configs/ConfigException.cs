namespace DiffusionSharp.Models.Configs;

/// <summary>A model configuration (usually a <c>config.json</c>) is malformed or asks for something the engine does not
/// implement. The message names the file and the key.</summary>
public sealed class ConfigException(string source, string? key, string message)
    : Exception(key is null ? $"{source}: {message}" : $"{source}: '{key}': {message}")
{
    /// <summary>The file (or other origin) of the configuration.</summary>
    public string ConfigSource { get; } = source;

    /// <summary>The offending key, when one is to blame.</summary>
    public string? Key { get; } = key;
}
