namespace DiffusionSharp.Pipeline;

/// <summary>A generation setting out of range or unknown; <see cref="ArgumentException.ParamName"/> is the CLI option name.</summary>
public sealed class InvalidSettingException(string message, string option) : ArgumentException(message, option);
