using DiffusionSharp.Models.Unet;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Caching;

/// <summary>
/// Profiling, first pass: lets every block run and measures how much each block's residual contribution changes from
/// one evaluation to the next (<see cref="ChangeCurves"/>), accumulated over every image generated with it: pass it as
/// the cache of each request of the prompt set, then read <see cref="Curves"/>. All requests must share model,
/// sampler, steps and size.
/// </summary>
public sealed class ChangeCurveRecorder : BlockCaching
{
    private CacheTarget? _target;
    private double[][] _sum = [], _sumSquares = [];
    private int[][] _count = [];
    private int _images;

    public override string Description => "profiling";

    public override IBlockCacheRun Prepare(CacheTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (_target is null)
        {
            _target = target;
            int blocks = target.Unet.HookedBlocks.Count;
            _sum = NewTable<double>(blocks, target.Evaluations);
            _sumSquares = NewTable<double>(blocks, target.Evaluations);
            _count = NewTable<int>(blocks, target.Evaluations);
        }
        else if (target.Unet != _target.Unet || target.Evaluations != _target.Evaluations)
        {
            throw new ArgumentException("Every run of one profile must use the same UNet and the same number of evaluations.", nameof(target));
        }
        return new Run(this);
    }

    /// <summary>The mean and standard deviation over every image and batch item so far.</summary>
    public ChangeCurves Curves()
    {
        var target = _target ?? throw new InvalidOperationException("Nothing was recorded.");
        var blocks = target.Unet.HookedBlocks;
        var mean = NewTable<double>(blocks.Count, target.Evaluations);
        var std = NewTable<double>(blocks.Count, target.Evaluations);
        for (int i = 0; i < blocks.Count; i++)
        {
            mean[i][0] = std[i][0] = double.NaN;
            for (int e = 1; e < target.Evaluations; e++)
            {
                int n = _count[i][e];
                if (n == 0) throw new InvalidOperationException($"No change was measured for block {blocks[i].Key} at evaluation {e}.");
                double m = _sum[i][e] / n;
                mean[i][e] = m;
                std[i][e] = Math.Sqrt(Math.Max(0, _sumSquares[i][e] / n - m * m));
            }
        }
        return new ChangeCurves(blocks.Select(b => b.Key).ToArray(), blocks.Select(b => b.Channels).ToArray(), target.Evaluations, mean, std, _images);
    }

    private static T[][] NewTable<T>(int rows, int columns)
    {
        var table = new T[rows][];
        for (int i = 0; i < rows; i++) table[i] = new T[columns];
        return table;
    }

    private sealed class Run(ChangeCurveRecorder owner) : IBlockCacheRun
    {
        public BlockCacheSession StartImage()
        {
            owner._images++;
            return new Session(owner);
        }
    }

    private sealed class Session(ChangeCurveRecorder owner) : BlockCacheSession(owner._target!.Unet, owner._target.Evaluations)
    {
        private readonly Tensor?[] _previous = new Tensor?[owner._target!.Unet.HookedBlocks.Count];
        private readonly Tensor?[] _current = new Tensor?[owner._target!.Unet.HookedBlocks.Count];
        private int _runs;

        public override CacheStatistics Statistics => new(Evaluation + 1, _runs, 0, 0, 0, 0);

        protected override BlockAction Begin(int block)
        {
            _runs++;
            return BlockAction.Record;
        }

        protected override void Record(int block, Tensor skip, Tensor output)
        {
            var current = _current[block];
            if (current is null || !current.ShapeEquals(output.Shape))
            {
                current?.Dispose();
                _current[block] = current = new Tensor(output.Shape); // [B, H, W, C]
            }
            ResidualMath.Subtract(output, skip, current); // [B, H, W, C]
            if (_previous[block] is { } previous && Evaluation > 0)
            {
                for (int item = 0; item < current.Shape[0]; item++)
                {
                    var (difference, magnitude) = ResidualMath.L1(current, previous, item);
                    if (!(magnitude > 0)) continue;
                    double change = difference / magnitude;
                    owner._sum[block][Evaluation] += change;
                    owner._sumSquares[block][Evaluation] += change * change;
                    owner._count[block][Evaluation]++;
                }
            }
            (_previous[block], _current[block]) = (current, _previous[block]);
        }

        protected override void Reuse(int block, Tensor skip, Tensor output)
            => throw new InvalidOperationException("Profiling never reuses a block.");

        protected override void Dispose(bool disposing)
        {
            foreach (var t in _previous) t?.Dispose();
            foreach (var t in _current) t?.Dispose();
            Array.Clear(_previous);
            Array.Clear(_current);
        }
    }
}
