namespace DiffusionSharp.Caching;

/// <summary>
/// What caching did over the UNet calls of one image so far. <see cref="Flops"/> counts the uncached UNet's FLOPs of
/// those calls (<c>Unet2DConditionModel.FlopsPerForward</c> x batch), <see cref="FlopsSaved"/> the part the skipped
/// blocks did not spend; <see cref="CacheBytes"/> is the memory the cached residuals hold.
/// </summary>
public sealed record CacheStatistics(int Evaluations, int BlockRuns, int BlockSkips, long Flops, long FlopsSaved, long CacheBytes)
{
    public static CacheStatistics None { get; } = new(0, 0, 0, 0, 0, 0);

    public int BlockEvaluations => BlockRuns + BlockSkips;

    /// <summary>FlopsSaved / Flops (0 before the first call).</summary>
    public double SavedFraction => Flops == 0 ? 0 : (double)FlopsSaved / Flops;
}
