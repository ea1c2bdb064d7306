using DiffusionSharp.Models.Unet;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Caching;

/// <summary>
/// The cache of one image: an <see cref="IBlockHook"/> over the UNet's <see cref="Unet2DConditionModel.HookedBlocks"/>
/// that knows which model evaluation (UNet call) is running. The pipeline calls <see cref="BeginEvaluation"/> before
/// each UNet call and passes the session to it. Not thread-safe: one session per sampling run.
/// </summary>
public abstract class BlockCacheSession : IBlockHook, IDisposable
{
    private readonly Dictionary<Module, int> _blockIndex = new(ReferenceEqualityComparer.Instance);

    protected BlockCacheSession(Unet2DConditionModel unet, int evaluations)
    {
        ArgumentNullException.ThrowIfNull(unet);
        ArgumentOutOfRangeException.ThrowIfLessThan(evaluations, 1);
        foreach (var block in unet.HookedBlocks) _blockIndex.Add(block.Module, block.Index);
        Evaluations = evaluations;
    }

    /// <summary>UNet calls of the image.</summary>
    public int Evaluations { get; }

    /// <summary>The current UNet call, from 0; -1 before the first.</summary>
    public int Evaluation { get; private set; } = -1;

    public abstract CacheStatistics Statistics { get; }

    /// <summary>Starts UNet call <paramref name="evaluation"/>: the next one, 0 first.</summary>
    public void BeginEvaluation(int evaluation)
    {
        if (evaluation != Evaluation + 1 || evaluation >= Evaluations)
            throw new InvalidOperationException(
                $"UNet call {evaluation} out of order: the cache expects call {Evaluation + 1} of {Evaluations} (was it prepared for another sampler or step count?).");
        Evaluation = evaluation;
        OnEvaluation(evaluation);
    }

    protected virtual void OnEvaluation(int evaluation)
    {
    }

    protected abstract BlockAction Begin(int block);

    protected abstract void Record(int block, Tensor skip, Tensor output);

    protected abstract void Reuse(int block, Tensor skip, Tensor output);

    BlockAction IBlockHook.Begin(Module block)
    {
        if (Evaluation < 0) throw new InvalidOperationException("BeginEvaluation was not called before the UNet call.");
        return Begin(IndexOf(block));
    }

    void IBlockHook.Record(Module block, Tensor skip, Tensor output) => Record(IndexOf(block), skip, output);

    void IBlockHook.Reuse(Module block, Tensor skip, Tensor output) => Reuse(IndexOf(block), skip, output);

    private int IndexOf(Module block)
        => _blockIndex.TryGetValue(block, out int index)
            ? index
            : throw new InvalidOperationException($"{block.GetType().Name} is not a hooked block of the UNet this cache was made for.");

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
