using DiffusionSharp.Models.Unet;

namespace DiffusionSharp.Caching;

/// <summary>
/// The DeepCache-style baseline (Ma et al., arXiv 2312.00858; its uniform 1:N schedule at branch 0): every
/// <see cref="Interval"/>-th evaluation (0, N, 2N, ...) runs the whole UNet; the evaluations in between run only the
/// shallowest layer at each end — the first down block's first resnet with the transformer after it, and the last up
/// block's last resnet with its transformer — and every other hooked block reuses its residual from the last full
/// evaluation. No profiling and no correction.
/// </summary>
public sealed class IntervalCaching : BlockCaching
{
    public IntervalCaching(int interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, 1);
        Interval = interval;
    }

    public int Interval { get; }

    public override string Description => $"interval {Interval}";

    public override IBlockCacheRun Prepare(CacheTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var blocks = target.Unet.HookedBlocks;
        var alwaysRun = ShallowBlocks(target.Unet);
        var recompute = new bool[blocks.Count][];
        foreach (var block in blocks)
        {
            var flags = recompute[block.Index] = new bool[target.Evaluations];
            for (int e = 0; e < flags.Length; e++) flags[e] = alwaysRun.Contains(block.Module) || e % Interval == 0;
        }
        return new CachePlan(target, recompute, corrections: null);
    }

    /// <summary>DeepCache's branch 0: the first layer of the first down block and the last layer of the last up block.</summary>
    public static IReadOnlySet<Nn.Module> ShallowBlocks(Unet2DConditionModel unet)
    {
        var shallow = new HashSet<Nn.Module>(ReferenceEqualityComparer.Instance);
        var first = unet.DownBlocks[0].Blocks;
        shallow.Add(first[0]);
        if (first.Count > 1 && first[1] is Transformer2DModel) shallow.Add(first[1]);
        var last = unet.UpBlocks[^1].Blocks;
        int lastResnet = last.Count - 1;
        while (last[lastResnet] is not ResnetBlock2D) lastResnet--;
        for (int j = lastResnet; j < last.Count; j++) shallow.Add(last[j]);
        return shallow;
    }
}
