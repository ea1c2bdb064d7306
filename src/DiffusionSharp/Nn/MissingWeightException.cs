namespace DiffusionSharp.Nn;

/// <summary>A layer asked for a weight the checkpoint does not have.</summary>
public sealed class MissingWeightException(string key, string location)
    : WeightException(key, $"Missing weight '{key}' ({location}). The checkpoint does not match the model configuration, or it is not a checkpoint of this model type.");
