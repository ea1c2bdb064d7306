using DiffusionSharp.Models.Unet;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Caching;

/// <summary>
/// The generation cache of one image, following a <see cref="CachePlan"/>: a block that runs and is reused next records
/// its residual contribution (output minus skip input, [B, H, W, C]: each batch item, so each guidance branch, keeps
/// its own); a block that is skipped outputs its current skip input plus that residual, scaled and shifted per
/// channel when the plan says so. One residual tensor per reused block, allocated on first use: memory is bounded by
/// <see cref="CachePlan.CacheBytes"/>.
/// </summary>
internal sealed class BlockCache : BlockCacheSession
{
    private readonly CachePlan _plan;
    private readonly Tensor?[] _residuals;
    private int _runs, _skips;
    private long _flopsSaved, _bytes;

    public BlockCache(CachePlan plan) : base(plan.Target.Unet, plan.Target.Evaluations)
    {
        _plan = plan;
        _residuals = new Tensor?[plan.Target.Unet.HookedBlocks.Count];
    }

    public override CacheStatistics Statistics
        => new(Evaluation + 1, _runs, _skips, _plan.UnetFlops * _plan.Target.Batch * (Evaluation + 1), _flopsSaved, _bytes);

    protected override BlockAction Begin(int block)
    {
        int e = Evaluation;
        if (_plan.Recompute(block, e))
        {
            _runs++;
            return _plan.Records(block, e) ? BlockAction.Record : BlockAction.Compute;
        }
        if (_residuals[block] is null)
            throw new InvalidOperationException($"Block {_plan.Target.Unet.HookedBlocks[block].Key} is reused at evaluation {e} before any residual was recorded.");
        _skips++;
        _flopsSaved += _plan.BlockFlops[block].Saved * _plan.Target.Batch;
        return BlockAction.Reuse;
    }

    protected override void Record(int block, Tensor skip, Tensor output)
    {
        var residual = _residuals[block];
        if (residual is null || !residual.ShapeEquals(output.Shape))
        {
            if (residual is not null) _bytes -= residual.Length * sizeof(float);
            residual?.Dispose();
            _residuals[block] = residual = new Tensor(output.Shape); // [B, H, W, C]
            _bytes += residual.Length * sizeof(float);
        }
        ResidualMath.Subtract(output, skip, residual); // [B, H, W, C]
    }

    protected override void Reuse(int block, Tensor skip, Tensor output)
        => ResidualMath.Add(skip, _residuals[block]!, _plan.Correction(block, Evaluation), output); // [B, H, W, C]

    protected override void Dispose(bool disposing)
    {
        for (int i = 0; i < _residuals.Length; i++)
        {
            _residuals[i]?.Dispose();
            _residuals[i] = null;
        }
    }
}
