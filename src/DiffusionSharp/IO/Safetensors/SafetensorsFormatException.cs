namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// A file that is not a valid safetensors file. The message names the file and, where the fault lies in one
/// tensor's entry, that tensor: <c>model.safetensors: tensor 'conv_in.weight': data_offsets [10, 20] hold 10 bytes but F16 [3, 3] needs 18</c>.
/// </summary>
public sealed class SafetensorsFormatException : FileFormatException
{
    public SafetensorsFormatException(string message) : base(message) { }

    public SafetensorsFormatException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>The tensor whose header entry is at fault, when there is one.</summary>
    public string? TensorName { get; init; }

    internal static SafetensorsFormatException For(string path, string problem, Exception? inner = null) =>
        new($"{path}: {problem}", inner) { FilePath = path };

    internal static SafetensorsFormatException ForTensor(string path, string tensor, string problem) =>
        new($"{path}: tensor '{tensor}': {problem}") { FilePath = path, TensorName = tensor };
}
