using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Quant;

namespace DiffusionSharp.Quantization;

/// <summary>Settings of <see cref="LayerQuantizer"/>.</summary>
public sealed record LayerQuantizerSettings
{
    /// <summary>One of <see cref="QuantizationMethods"/>.</summary>
    public required string Method { get; init; }
    /// <summary>Rank of the low-rank branch (svdquant).</summary>
    public int Rank { get; init; } = 32;
    /// <summary>Inputs per scale group of the int4 and NF4 weights (and of the int4 activations).</summary>
    public int GroupSize { get; init; } = 64;
    /// <summary>A fixed smoothing strength α (λ = max|X|^α / max|W|^(1−α)); null searches the grid.</summary>
    public double? Alpha { get; init; }
    /// <summary>Grid steps of the α search: α = 1/steps .. (steps−1)/steps, each with β = 1 − α and β = 0, plus λ = 1.</summary>
    public int AlphaSteps { get; init; } = 20;
    /// <summary>Rounds of the alternating low-rank / residual refinement after the search (1 = the plain SVD split).</summary>
    public int LowRankIterations { get; init; } = 4;
    /// <summary>Quantize the int4 residual of the chosen smoothing with GPTQ instead of rounding to nearest (svdquant, w4a4-smooth).</summary>
    public bool Gptq { get; init; }
    /// <summary>Code W4A4 activations per group over [min, max] with a zero point instead of symmetrically (svdquant, w4a4-smooth, w4a4-naive).</summary>
    public bool AsymmetricActivations { get; init; }
}

/// <summary>
/// Quantizes one layer from its fp32 weight and calibration record (the algorithms of SVDQuant and its baselines, as in
/// the authors' deepcompressor; docs/QUANTIZATION.md):
/// <list type="number">
/// <item>Smoothing λ_c = max|X_c|^α / max|W_c|^β per input channel c (zeros and non-finite values give 1), the
/// candidates (α, β) ∈ {(0, 0)} ∪ {(α, 0), (α, 1−α) : α = 1/steps, ..., (steps−1)/steps} (39 for 20 steps), each
/// scored by the quantized layer's output error on the calibration rows, run through the real kernels.</item>
/// <item>Ŵ = W · diag(λ); the top-r SVD (float64) gives up = U_r S_r and down = V_r, rounded to fp16 as stored; the
/// residual R = Ŵ − up · downᵀ is quantized to int4 per group of 64 with fp16 scales.</item>
/// <item>Refinement: L ← SVD_r(Ŵ − Q(R)), R ← Ŵ − L, repeated while the output error falls (deepcompressor's
/// alternating low-rank calibration), so the branch absorbs what the int4 residual gets wrong.</item>
/// </list>
/// Error = ‖Y − Ŷ‖² / ‖Y‖² over the calibration rows, Y = X · Wᵀ in fp32.
/// </summary>
public sealed unsafe class LayerQuantizer
{
    private readonly CalibrationRecorder.LayerRecord _record;
    private readonly double[] _weight;
    private readonly LayerQuantizerSettings _settings;
    private readonly float[] _reference;
    private readonly double _referenceEnergy;
    private readonly int _n, _k, _rows;

    /// <param name="weight">[N, K] with K in (ky, kx, ci) order for a convolution.</param>
    public LayerQuantizer(CalibrationRecorder.LayerRecord record, double[] weight, LayerQuantizerSettings settings)
    {
        _record = record;
        _weight = weight;
        _settings = settings;
        _n = record.OutChannels;
        _k = record.K;
        _rows = record.SampleCount;
        if (weight.Length != (long)_n * _k) throw new ArgumentException($"Layer '{record.Key}': weight has {weight.Length} values, [{_n}, {_k}] needs {(long)_n * _k}.");
        if (_rows == 0) throw new InvalidOperationException($"Layer '{record.Key}' saw no calibration input.");
        _reference = new float[_rows * _n];
        using (var w = new PackedMatrix(Array.ConvertAll(weight, v => (float)v), _n, _k))
        fixed (float* x = record.Samples, y = _reference)
            GemmKernel.Linear(x, _k, _rows, w, null, y, _n);
        foreach (float v in _reference) _referenceEnergy += (double)v * v;
    }

    public QuantizedLayer Quantize()
    {
        return _settings.Method switch
        {
            QuantizationMethods.W8A8 => Scored(W8A8()),
            QuantizationMethods.Nf4 => Scored(Nf4()),
            QuantizationMethods.W4A4Naive => Scored(W4A4(Ones(), rank: 0, null, null)),
            QuantizationMethods.W4A4Smooth => Refine(Search(rank: 0)),
            QuantizationMethods.SvdQuant => Refine(Search(Math.Min(_settings.Rank, Math.Min(_n, _k)))),
            var m => throw new ArgumentException($"Unknown quantization method '{m}'; expected one of {string.Join(", ", QuantizationMethods.All)}."),
        };
    }

    private QuantizedLayer Search(int rank)
    {
        QuantizedLayer? best = null;
        foreach (var (alpha, beta) in Candidates())
        {
            var layer = Scored(W4A4(Smoothing(alpha, beta), rank, alpha, beta));
            if (best == null || layer.RelativeError < best.RelativeError) best = layer;
        }
        return best!;
    }

    private IEnumerable<(double Alpha, double Beta)> Candidates()
    {
        if (_settings.Alpha is { } fixedAlpha)
        {
            yield return (fixedAlpha, 1 - fixedAlpha);
            yield break;
        }
        yield return (0, 0);
        for (int i = 1; i < _settings.AlphaSteps; i++)
        {
            double a = (double)i / _settings.AlphaSteps;
            yield return (a, 0);
            yield return (a, 1 - a);
        }
    }

    /// <summary>λ_c = max|X_c|^α / max|W_c|^β, rounded to fp32 (as stored); 1 where undefined.</summary>
    private float[] Smoothing(double alpha, double beta)
    {
        int cin = _record.InChannels;
        var wmax = new double[cin];
        for (int o = 0; o < _n; o++)
        for (int i = 0; i < _k; i++)
            wmax[i % cin] = Math.Max(wmax[i % cin], Math.Abs(_weight[(long)o * _k + i]));
        var lambda = new float[cin];
        for (int c = 0; c < cin; c++)
        {
            double x = _record.ChannelMax[c], w = wmax[c];
            double l = x > 0 && w > 0 ? Math.Pow(x, alpha) / Math.Pow(w, beta) : 1;
            lambda[c] = double.IsFinite(l) && l > 1e-10 && l < 1e10 ? (float)l : 1f;
        }
        return lambda;
    }

    private float[] Ones()
    {
        var ones = new float[_record.InChannels];
        Array.Fill(ones, 1f);
        return ones;
    }

    /// <summary>Ŵ = W · diag(λ) split into a rank-r branch and an int4 residual; λ = 1 everywhere stores no smoothing.</summary>
    private QuantizedLayer W4A4(float[] lambda, int rank, double? alpha, double? beta)
    {
        var smoothed = Smoothed(lambda);
        var (down, up, residual) = rank > 0 ? Split(smoothed, Svd.Truncated(smoothed, _n, _k, rank)) : ([], [], smoothed);
        return Int4Layer(lambda, rank, down, up, residual, alpha, beta);
    }

    /// <summary>The alternating refinement of the best candidate's branch and residual, kept while the error falls.</summary>
    private QuantizedLayer Refine(QuantizedLayer best)
    {
        var lambda = best.Smooth ?? Ones();
        var smoothed = Smoothed(lambda);
        var current = best;
        var gptq = _settings.Gptq ? Gptq.Prepare(SmoothedInputs(lambda), _rows, _k) : null;
        if (gptq != null)
        {
            var residual = (double[])smoothed.Clone();
            if (best.Rank > 0) Subtract(residual, best.Down!, best.Up!, best.Rank);
            var candidate = Scored(Int4Layer(lambda, best.Rank, best.Down ?? [], best.Up ?? [], residual, best.Alpha, best.Beta, gptq));
            if (candidate.RelativeError < current.RelativeError) current = candidate;
        }
        if (best.Rank == 0) return current;
        for (int iteration = 1; iteration < _settings.LowRankIterations; iteration++)
        {
            var quantized = WeightQuantizer.Dequantize(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(current.Codes), current.Scales, _n, _k, _settings.GroupSize);
            var target = new double[smoothed.Length];
            for (int i = 0; i < target.Length; i++) target[i] = smoothed[i] - quantized[i];
            var (down, up, _) = Split(target, Svd.Truncated(target, _n, _k, best.Rank));
            var residual = (double[])smoothed.Clone();
            Subtract(residual, down, up, best.Rank);
            var candidate = Scored(Int4Layer(lambda, best.Rank, down, up, residual, best.Alpha, best.Beta, gptq));
            if (!(candidate.RelativeError < current.RelativeError)) break;
            current = candidate;
        }
        return current;
    }

    private double[] Smoothed(float[] lambda)
    {
        int cin = _record.InChannels;
        var w = new double[_weight.Length];
        for (int o = 0; o < _n; o++)
        for (int i = 0; i < _k; i++)
            w[(long)o * _k + i] = _weight[(long)o * _k + i] * lambda[i % cin];
        return w;
    }

    /// <summary>up = fp16(U S), down = fp16(V), residual = m − up · downᵀ (with the rounded factors).</summary>
    private (float[] Down, float[] Up, double[] Residual) Split(double[] m, SvdResult svd)
    {
        int r = svd.Rank;
        var down = new float[_k * r];
        var up = new float[_n * r];
        for (int i = 0; i < _k; i++)
        for (int j = 0; j < r; j++)
            down[i * r + j] = (float)(Half)svd.V[i * r + j];
        for (int o = 0; o < _n; o++)
        for (int j = 0; j < r; j++)
            up[o * r + j] = (float)(Half)(svd.U[o * r + j] * svd.S[j]);
        var residual = (double[])m.Clone();
        Subtract(residual, down, up, r);
        return (down, up, residual);
    }

    private void Subtract(double[] m, float[] down, float[] up, int r)
    {
        for (int o = 0; o < _n; o++)
        for (int i = 0; i < _k; i++)
        {
            double s = 0;
            for (int j = 0; j < r; j++) s += (double)up[o * r + j] * down[i * r + j];
            m[(long)o * _k + i] -= s;
        }
    }

    /// <summary>The calibration rows divided by λ (what the residual multiplies), [rows, K] in float64.</summary>
    private double[] SmoothedInputs(float[] lambda)
    {
        int cin = _record.InChannels;
        var x = new double[(long)_rows * _k];
        for (int r = 0; r < _rows; r++)
        for (int i = 0; i < _k; i++)
            x[(long)r * _k + i] = _record.Samples[(long)r * _k + i] / (double)lambda[i % cin];
        return x;
    }

    /// <param name="gptq">The factor of the smoothed calibration rows to quantize the residual with GPTQ; null rounds to nearest.</param>
    private QuantizedLayer Int4Layer(float[] lambda, int rank, float[] down, float[] up, double[] residual, double? alpha, double? beta, Gptq.Factor? gptq = null)
    {
        var (codes, scales) = gptq != null
            ? Gptq.Int4Groups(residual, _n, _k, _settings.GroupSize, gptq)
            : WeightQuantizer.Int4Groups(residual, _n, _k, _settings.GroupSize);
        bool smooth = lambda.Any(l => l != 1f);
        return Layer(QuantizedLayerFormat.W4A4, (byte[])(Array)codes, scales) with
        {
            GroupSize = _settings.GroupSize,
            AsymmetricActivations = _settings.AsymmetricActivations,
            Smooth = smooth ? lambda : null,
            Rank = rank,
            Down = rank > 0 ? down : null,
            Up = rank > 0 ? up : null,
            Alpha = smooth ? alpha : null,
            Beta = smooth ? beta : null,
        };
    }

    private QuantizedLayer W8A8()
    {
        var (codes, scales) = WeightQuantizer.Int8Channels(_weight, _n, _k);
        return Layer(QuantizedLayerFormat.W8A8, (byte[])(Array)codes, scales);
    }

    private QuantizedLayer Nf4()
    {
        var (codes, absmax) = WeightQuantizer.Nf4Groups(_weight, _n, _k, _settings.GroupSize);
        return Layer(QuantizedLayerFormat.Nf4, codes, absmax) with { GroupSize = _settings.GroupSize };
    }

    private QuantizedLayer Layer(QuantizedLayerFormat format, byte[] codes, float[] scales) => new()
    {
        Key = _record.Key,
        IsConvolution = _record.Convolution != null,
        InChannels = _record.InChannels,
        OutChannels = _n,
        KernelSize = _record.KernelSize,
        Format = format,
        Codes = codes,
        Scales = scales,
    };

    /// <summary>The layer with its relative output error on the calibration rows, measured through the kernels.</summary>
    private QuantizedLayer Scored(QuantizedLayer layer)
    {
        var y = new float[_rows * _n];
        using (var matrix = layer.CreateMatrix())
        fixed (float* x = _record.Samples, py = y)
            matrix.Forward(ActivationRows.Matrix(x, _k, _k), _rows, null, py, _n);
        double error = 0;
        for (int i = 0; i < y.Length; i++)
        {
            double d = (double)y[i] - _reference[i];
            error += d * d;
        }
        return layer with { RelativeError = _referenceEnergy > 0 ? error / _referenceEnergy : error };
    }
}
