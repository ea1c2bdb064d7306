namespace DiffusionSharp.Sampling;

/// <summary>
/// One guided UNet evaluation as the pipeline provides it (both CFG branches already combined): the UNet input
/// <paramref name="scaledInput"/> (<c>c_in * x</c>, the variance-preserving latent), the fractional training timestep,
/// and the destination for the model's raw output (epsilon or v, per <see cref="ModelPrediction"/>).
/// </summary>
public delegate void ModelFunction(ReadOnlySpan<float> scaledInput, double timestep, Span<float> output);
