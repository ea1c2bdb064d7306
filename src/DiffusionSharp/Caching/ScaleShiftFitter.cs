using DiffusionSharp.Models.Unet;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Caching;

/// <summary>
/// Profiling, second pass: the least-squares scale/shift of each reused residual, fitted in closed form instead of the
/// paper's gradient training. Every block runs (the uncached trajectory); for each schedule the fitter keeps the
/// residual r_s recorded at a block's last recompute evaluation s, and at each evaluation e the schedule skips it
/// accumulates, per channel c, the sums that solve
/// <code>
/// min over (a, b):  sum over images, batch items and pixels of (a * r_s[p, c] + b - r_e[p, c])^2
/// a = cov(r_s, r_e) / var(r_s),   b = mean(r_e) - a * mean(r_s)       (a = 1 where var(r_s) is 0)
/// </code>
/// with r_e the residual the block really produces at e. Pass it as the cache of each request of the prompt set, then
/// read <see cref="Fitted"/>.
/// </summary>
public sealed class ScaleShiftFitter : BlockCaching
{
    private readonly IReadOnlyList<CacheSchedule> _schedules;
    private CacheTarget? _target;
    // [schedule][block][evaluation]: per channel sums of x, y, x*x, x*y (4 * C doubles) where the schedule reuses; count of samples per channel.
    private double[]?[][][] _sums = [];
    private long[][][] _counts = [];

    public ScaleShiftFitter(IReadOnlyList<CacheSchedule> schedules)
    {
        ArgumentNullException.ThrowIfNull(schedules);
        if (schedules.Count == 0) throw new ArgumentException("No schedule to fit.", nameof(schedules));
        _schedules = schedules;
    }

    public override string Description => "profiling";

    public override IBlockCacheRun Prepare(CacheTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (_target is null)
        {
            var blocks = target.Unet.HookedBlocks;
            foreach (var schedule in _schedules)
            {
                if (schedule.Blocks.Count != blocks.Count || schedule.Target.Evaluations != target.Evaluations)
                    throw new ArgumentException("The schedules to fit must be made for this UNet and evaluation count.", nameof(target));
                for (int i = 0; i < blocks.Count; i++)
                    if (schedule.Blocks[i].Key != blocks[i].Key)
                        throw new ArgumentException($"Schedule block {i} is '{schedule.Blocks[i].Key}', the UNet's '{blocks[i].Key}'.", nameof(target));
            }
            _target = target;
            _sums = new double[]?[_schedules.Count][][];
            _counts = new long[_schedules.Count][][];
            for (int s = 0; s < _schedules.Count; s++)
            {
                _sums[s] = new double[]?[blocks.Count][];
                _counts[s] = new long[blocks.Count][];
                for (int i = 0; i < blocks.Count; i++)
                {
                    _sums[s][i] = new double[]?[target.Evaluations];
                    _counts[s][i] = new long[target.Evaluations];
                    for (int e = 0; e < target.Evaluations; e++)
                        if (!_schedules[s].Blocks[i].Recompute[e]) _sums[s][i][e] = new double[4 * blocks[i].Channels];
                }
            }
        }
        else if (target.Unet != _target.Unet || target.Evaluations != _target.Evaluations)
        {
            throw new ArgumentException("Every run of one profile must use the same UNet and the same number of evaluations.", nameof(target));
        }
        return new Run(this);
    }

    /// <summary>The schedules with their corrections filled in.</summary>
    public IReadOnlyList<CacheSchedule> Fitted()
    {
        if (_target is null) throw new InvalidOperationException("Nothing was recorded.");
        var fitted = new CacheSchedule[_schedules.Count];
        for (int s = 0; s < _schedules.Count; s++)
        {
            var blocks = _schedules[s].Blocks.Select((block, i) =>
            {
                var corrections = new ChannelCorrection?[_target.Evaluations];
                for (int e = 0; e < corrections.Length; e++)
                    if (_sums[s][i][e] is { } sums && _counts[s][i][e] > 0)
                        corrections[e] = Solve(sums, block.Channels, _counts[s][i][e]);
                return block with { Corrections = corrections };
            }).ToArray();
            fitted[s] = _schedules[s] with { Blocks = blocks };
        }
        return fitted;
    }

    /// <summary>The closed-form least-squares line per channel from its sums of x, y, xx, xy over <paramref name="n"/> samples.</summary>
    public static ChannelCorrection Solve(ReadOnlySpan<double> sums, int channels, long n)
    {
        var scale = new float[channels];
        var shift = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double meanX = sums[c] / n, meanY = sums[channels + c] / n;
            double meanXx = sums[2 * channels + c] / n, meanXy = sums[3 * channels + c] / n;
            double varX = meanXx - meanX * meanX, covXy = meanXy - meanX * meanY;
            double a = varX > 1e-12 * meanXx ? covXy / varX : 1.0;
            scale[c] = (float)a;
            shift[c] = (float)(meanY - a * meanX);
        }
        return new ChannelCorrection(scale, shift);
    }

    /// <summary>Adds the samples of x (cached) and y (true) [.., C] to the per-channel sums.</summary>
    internal static void Accumulate(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int channels, Span<double> sums)
    {
        for (int p = 0; p < x.Length; p += channels)
        {
            for (int c = 0; c < channels; c++)
            {
                double xv = x[p + c], yv = y[p + c];
                sums[c] += xv;
                sums[channels + c] += yv;
                sums[2 * channels + c] += xv * xv;
                sums[3 * channels + c] += xv * yv;
            }
        }
    }

    private sealed class Run(ScaleShiftFitter owner) : IBlockCacheRun
    {
        public BlockCacheSession StartImage() => new Session(owner);
    }

    private sealed class Session(ScaleShiftFitter owner) : BlockCacheSession(owner._target!.Unet, owner._target.Evaluations)
    {
        private readonly Tensor?[] _residual = new Tensor?[owner._target!.Unet.HookedBlocks.Count];
        private readonly Tensor?[][] _source = owner._schedules.Select(_ => new Tensor?[owner._target!.Unet.HookedBlocks.Count]).ToArray();
        private int _runs;

        public override CacheStatistics Statistics => new(Evaluation + 1, _runs, 0, 0, 0, 0);

        protected override BlockAction Begin(int block)
        {
            _runs++;
            return BlockAction.Record;
        }

        protected override void Record(int block, Tensor skip, Tensor output)
        {
            var residual = Ensure(ref _residual[block], output);
            ResidualMath.Subtract(output, skip, residual); // [B, H, W, C]
            int e = Evaluation, channels = output.Shape[^1];
            for (int s = 0; s < owner._schedules.Count; s++)
            {
                if (owner._schedules[s].Blocks[block].Recompute[e])
                {
                    residual.Span.CopyTo(Ensure(ref _source[s][block], output).Span);
                }
                else
                {
                    var source = _source[s][block] ?? throw new InvalidOperationException($"Schedule {s} reuses block {block} before it ran.");
                    Accumulate(source.Span, residual.Span, channels, owner._sums[s][block][e]);
                    owner._counts[s][block][e] += residual.Length / channels;
                }
            }
        }

        protected override void Reuse(int block, Tensor skip, Tensor output)
            => throw new InvalidOperationException("Profiling never reuses a block.");

        private static Tensor Ensure(ref Tensor? slot, Tensor like)
        {
            if (slot is null || !slot.ShapeEquals(like.Shape))
            {
                slot?.Dispose();
                slot = new Tensor(like.Shape); // [B, H, W, C]
            }
            return slot;
        }

        protected override void Dispose(bool disposing)
        {
            foreach (var t in _residual) t?.Dispose();
            foreach (var row in _source)
                foreach (var t in row) t?.Dispose();
        }
    }
}
