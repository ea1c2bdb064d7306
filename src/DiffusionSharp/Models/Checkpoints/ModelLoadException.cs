namespace DiffusionSharp.Models.Checkpoints;

/// <summary>A model file or folder that cannot be used, with a message naming it and saying what was found.</summary>
public sealed class ModelLoadException : Exception
{
    public string ModelPath { get; }

    public ModelLoadException(string modelPath, string message, Exception? inner = null) : base(message, inner)
    {
        ModelPath = modelPath;
    }
}
