namespace DiffusionSharp.Sampling;

/// <summary>
/// Reported after each completed sampler step: step <see cref="Step"/> of <see cref="Steps"/>, and the UNet
/// evaluations spent so far of the run's total (second-order samplers spend two per step, one on the last).
/// <see cref="Sigma"/> is the noise level the latent has reached.
/// </summary>
public readonly record struct SamplerProgress(int Step, int Steps, int ModelEvaluations, int TotalModelEvaluations, double Sigma);
