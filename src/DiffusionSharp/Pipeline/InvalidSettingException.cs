namespace DiffusionSharp.Pipeline;

/// <summary>A generation setting out of range or unknown. <see cref="Option"/> is the CLI option it came from.</summary>
public sealed class InvalidSettingException(string message, string option) : ArgumentException(message, option)
{
    public string Option => ParamName!;

    /// <summary>The message alone: it already names the setting, so no "(Parameter '...')" suffix.</summary>
    public override string Message { get; } = message;
}
