namespace DiffusionSharp.Sampling.Rng;

/// <summary>
/// A seeded source of standard normal noise. Each call is one <c>randn</c> call of the generator being reproduced:
/// it fills <c>destination</c> in that generator's element order (row-major over the tensor it would have drawn, e.g.
/// <c>[C, H, W]</c> for one SD latent) and advances the generator state the way that call does.
/// </summary>
public interface INoiseGenerator
{
    void NextNormal(Span<float> destination);
}
