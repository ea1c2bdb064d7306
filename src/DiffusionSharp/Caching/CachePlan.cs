namespace DiffusionSharp.Caching;

/// <summary>
/// A caching policy made concrete for one run: per hooked block, at which evaluations it runs, which reused residuals
/// get a scale/shift, what each skip saves, and so the exact FLOPs and memory a full image will take. Made by
/// <see cref="ScheduledCaching"/> and <see cref="IntervalCaching"/>; <see cref="StartImage"/> gives the cache of one image.
/// </summary>
public sealed class CachePlan : IBlockCacheRun
{
    private readonly bool[][] _recompute;
    private readonly bool[][] _record;
    private readonly ChannelCorrection?[][] _corrections;
    private readonly long[] _residualBytes;

    /// <param name="recompute">[block][evaluation]: run the block; every block must run at evaluation 0.</param>
    /// <param name="corrections">[block][evaluation]: the scale/shift of a reused residual, or null entries / a null array.</param>
    public CachePlan(CacheTarget target, IReadOnlyList<bool[]> recompute, IReadOnlyList<ChannelCorrection?[]>? corrections)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(recompute);
        var blocks = target.Unet.HookedBlocks;
        if (recompute.Count != blocks.Count)
            throw new ArgumentException($"The plan covers {recompute.Count} blocks; the UNet has {blocks.Count}.", nameof(recompute));
        Target = target;
        int n = target.Evaluations;
        _recompute = new bool[blocks.Count][];
        _record = new bool[blocks.Count][];
        _corrections = new ChannelCorrection?[blocks.Count][];
        _residualBytes = new long[blocks.Count];
        var sizes = target.Unet.LevelSizes(target.LatentHeight, target.LatentWidth);
        for (int i = 0; i < blocks.Count; i++)
        {
            if (recompute[i].Length != n)
                throw new ArgumentException($"Block {blocks[i].Key}: {recompute[i].Length} recompute flags for {n} evaluations.", nameof(recompute));
            if (!recompute[i][0])
                throw new ArgumentException($"Block {blocks[i].Key} must run at evaluation 0.", nameof(recompute));
            _recompute[i] = (bool[])recompute[i].Clone();
            _record[i] = new bool[n];
            for (int e = 0; e + 1 < n; e++) _record[i][e] = _recompute[i][e] && !_recompute[i][e + 1];
            _corrections[i] = corrections?[i] is { } c ? (ChannelCorrection?[])c.Clone() : new ChannelCorrection?[n];
            if (_corrections[i].Length != n)
                throw new ArgumentException($"Block {blocks[i].Key}: {_corrections[i].Length} corrections for {n} evaluations.", nameof(corrections));
            if (_recompute[i].Contains(false))
            {
                var (h, w) = sizes[blocks[i].SizeIndex];
                _residualBytes[i] = (long)target.Batch * h * w * blocks[i].Channels * sizeof(float);
            }
        }
        BlockFlops = target.Unet.HookedBlockFlops(target.LatentHeight, target.LatentWidth, target.ContextTokens);
        UnetFlops = target.Unet.FlopsPerForward(target.LatentHeight, target.LatentWidth, target.ContextTokens);
        CacheBytes = _residualBytes.Sum();
    }

    public CacheTarget Target { get; }

    /// <summary>Per block, per batch item: FLOPs when run and FLOPs saved when skipped.</summary>
    public IReadOnlyList<(long Run, long Saved)> BlockFlops { get; }

    /// <summary>FLOPs of one uncached UNet call per batch item.</summary>
    public long UnetFlops { get; }

    /// <summary>Memory of the cached residuals: one [B, h, w, C] float tensor per block that is ever reused. The bound.</summary>
    public long CacheBytes { get; }

    public bool Recompute(int block, int evaluation) => _recompute[block][evaluation];

    /// <summary>True when the residual of this run is needed: the block runs now and is reused at the next evaluation.</summary>
    public bool Records(int block, int evaluation) => _record[block][evaluation];

    public ChannelCorrection? Correction(int block, int evaluation) => _corrections[block][evaluation];

    public long ResidualBytes(int block) => _residualBytes[block];

    /// <summary>The statistics a whole image will end with (the schedule is fixed, so they are known in advance).</summary>
    public CacheStatistics Expected
    {
        get
        {
            int runs = 0, skips = 0;
            long saved = 0;
            for (int i = 0; i < _recompute.Length; i++)
                for (int e = 0; e < Target.Evaluations; e++)
                {
                    if (_recompute[i][e]) runs++;
                    else
                    {
                        skips++;
                        saved += BlockFlops[i].Saved;
                    }
                }
            return new CacheStatistics(Target.Evaluations, runs, skips, UnetFlops * Target.Batch * Target.Evaluations, saved * Target.Batch, CacheBytes);
        }
    }

    public BlockCacheSession StartImage() => new BlockCache(this);
}
