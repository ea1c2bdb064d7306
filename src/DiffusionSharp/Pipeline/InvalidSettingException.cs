namespace DiffusionSharp.Pipeline;

/// <summary>
/// A generation setting out of range or unknown; <see cref="ArgumentException.ParamName"/> is the CLI option name.
/// <see cref="Message"/> is the one-line explanation alone (without the "(Parameter ...)" suffix ArgumentException adds).
/// </summary>
public sealed class InvalidSettingException(string message, string option) : ArgumentException(message, option)
{
    public override string Message { get; } = message;
}
