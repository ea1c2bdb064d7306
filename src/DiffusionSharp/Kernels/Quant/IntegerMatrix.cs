using System.Runtime.InteropServices;

namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// Integer weights AND integer activations (W4A4 as SVDQuant runs it, or W8A8), packed for <see cref="IntegerGemm"/>:
/// <code>
/// x̂ = x / λ                                          (smoothing, per input; none = 1)
/// y[n] = Σ_g sx[g] · sw[n, g] · Σ_{k in g} qx[k] · qw[n, k]   (the integer GEMM, dequantized per group)
///      + Σ_j (x̂ · down)[j] · up[n, j]                  (the low-rank branch, rank r; none = 0)
///      + bias[n]
/// </code>
/// qx, sx: the activations quantized at run time per row and group (<see cref="ActivationQuantizer"/>); qw, sw: the
/// stored weights, symmetric, one scale per output and group of <see cref="GroupSize"/> inputs (W4A4; 64 in SVDQuant)
/// or per output channel (W8A8: one group spanning the row).
/// <para>
/// Asymmetric activations (<see cref="AsymmetricActivations"/>, W4A4 only): each row's group is coded over its own
/// [min, max] in 16 levels, x̂ ≈ sx · qx + zx with qx in [-8, 7] and the zero point zx = min + 8 sx, which adds
/// Σ_g zx[g] · sw[n, g] · Σ_{k in g} qw[n, k]. That term is a product of a per-(row, group) and a per-(output, group)
/// value, so it rides on the low-rank branch: the branch gets one more input per group (zx, written by the quantizer)
/// and one more up column per group (sw · Σ qw, made at packing), and the integer GEMM is unchanged. Symmetric codes
/// use 15 of the 16 levels and spend half of them on the sign of groups that are mostly one-signed (post-SiLU
/// features, SwiGLU products); coding over [min, max] halves the step for such groups.
/// </para>
/// <para>
/// Packed layout (K padded with zeros to <see cref="PaddedK"/>, a multiple of the group and of 64; N to panels of
/// <see cref="PanelWidth"/> outputs):
/// 4-bit weights: panel p, octet o (inputs 8o..8o+7) is 64 bytes; byte 4c + j holds output 16p + c: input 8o + j in
/// the low nibble, 8o + 4 + j in the high nibble, each stored as w + 8 in [0, 15]. 8-bit weights: panel p, quad q
/// (inputs 4q..4q+3) is 64 bytes; byte 4c + j is w[16p + c, 4q + j] + 128. So a 512-bit load is one octet (one quad)
/// of 16 outputs, lanes of 4 consecutive inputs per output — the operand of vpmaddubsw / vpdpbusd. Weight scales:
/// [panel][group][16] floats. Low-rank: down [K][r16] (r16 = r rounded up to 16, zeros past r), up [panel][b][16]
/// with b = r16 (+ the groups rounded up to 16 with asymmetric activations: the zero-point columns).
/// </para>
/// </summary>
public sealed unsafe class IntegerMatrix : QuantizedMatrix
{
    /// <summary>Outputs per panel: the int32 lanes of one 512-bit register.</summary>
    public const int PanelWidth = 16;

    /// <summary>K is padded to a multiple of this (and of the group).</summary>
    public const int KAlignment = 64;

    private byte* _weights;
    private float* _scales;
    private float* _invSmooth;
    private float* _down;
    private float* _up;
    private readonly long _byteSize;

    /// <summary>Bits of weights and activations: 4 or 8.</summary>
    public int Bits { get; }

    /// <summary>Inputs per quantization group (W8A8: <see cref="PaddedK"/>, one group per row).</summary>
    public int GroupSize { get; }

    public int PaddedK { get; }
    public int Groups => PaddedK / GroupSize;
    public int Rank { get; }
    internal int PaddedRank { get; }

    /// <summary>Activation groups are coded over [min, max] with a zero point (W4A4 only; see the class remarks).</summary>
    public bool AsymmetricActivations { get; }

    /// <summary>Inputs of the up projection per row: the padded rank, then (asymmetric activations) one zero point per group, padded to 16.</summary>
    internal int BranchWidth { get; }
    public int PanelCount => (N + PanelWidth - 1) / PanelWidth;
    public bool HasSmoothing => _invSmooth != null;

    /// <summary>Largest activation code: 7 (4-bit) or 127 (8-bit); symmetric codes are in [-max, max], asymmetric ones in [-8, 7].</summary>
    public int ActivationMax => Bits == 4 ? 7 : 127;

    /// <summary>The bias added to stored weights to make them unsigned bytes: 8 (4-bit) or 128 (8-bit).</summary>
    internal int WeightOffset => Bits == 4 ? 8 : 128;

    public override string Format => Bits == 4 ? "w4a4" : "w8a8";
    public override long ByteSize => _byteSize;

    /// <summary>
    /// W4A4: <paramref name="weights"/> [n, k] int4 codes in [-8, 7], <paramref name="scales"/> [n, ceil(k / groupSize)];
    /// <paramref name="smooth"/> λ [k] (empty: none); <paramref name="down"/> [k, rank] and <paramref name="up"/> [n, rank]
    /// (rank 0: no low-rank branch). <paramref name="groupSize"/> is a multiple of 16 from 16 to 256.
    /// <paramref name="asymmetricActivations"/>: activations coded per group over [min, max] (class remarks).
    /// </summary>
    public static IntegerMatrix W4A4(int n, int k, int groupSize, ReadOnlySpan<sbyte> weights, ReadOnlySpan<float> scales,
        ReadOnlySpan<float> smooth, int rank, ReadOnlySpan<float> down, ReadOnlySpan<float> up, bool asymmetricActivations = false)
    {
        if (groupSize < 16 || groupSize > 256 || groupSize % 16 != 0)
            throw new ArgumentException($"The W4A4 group size must be a multiple of 16 from 16 to 256, got {groupSize}.", nameof(groupSize));
        return new IntegerMatrix(4, n, k, groupSize, weights, scales, smooth, rank, down, up, asymmetricActivations);
    }

    /// <summary>W8A8: <paramref name="weights"/> [n, k] int8 codes, <paramref name="scales"/> [n] (per output channel).</summary>
    public static IntegerMatrix W8A8(int n, int k, ReadOnlySpan<sbyte> weights, ReadOnlySpan<float> scales,
        ReadOnlySpan<float> smooth = default, int rank = 0, ReadOnlySpan<float> down = default, ReadOnlySpan<float> up = default)
        => new(8, n, k, 0, weights, scales, smooth, rank, down, up, asymmetricActivations: false);

    private IntegerMatrix(int bits, int n, int k, int groupSize, ReadOnlySpan<sbyte> weights, ReadOnlySpan<float> scales,
        ReadOnlySpan<float> smooth, int rank, ReadOnlySpan<float> down, ReadOnlySpan<float> up, bool asymmetricActivations) : base(n, k)
    {
        Bits = bits;
        PaddedK = RoundUp(k, bits == 4 ? Math.Max(KAlignment, groupSize) : KAlignment);
        if (bits == 4 && PaddedK % groupSize != 0) PaddedK = RoundUp(PaddedK, groupSize);
        GroupSize = bits == 4 ? groupSize : PaddedK;
        Rank = rank;
        PaddedRank = RoundUp(rank, 16);
        AsymmetricActivations = asymmetricActivations;
        BranchWidth = PaddedRank + (asymmetricActivations ? RoundUp(Groups, 16) : 0);
        int groups = Groups, logicalGroups = bits == 4 ? (k + groupSize - 1) / groupSize : 1;
        if (weights.Length != (long)n * k) throw new ArgumentException($"Weights hold {weights.Length} codes; [{n}, {k}] needs {(long)n * k}.", nameof(weights));
        if (scales.Length != (long)n * logicalGroups) throw new ArgumentException($"Scales hold {scales.Length} values; [{n}, {logicalGroups}] needed.", nameof(scales));
        if (!smooth.IsEmpty && smooth.Length != k) throw new ArgumentException($"Smoothing holds {smooth.Length} values; {k} needed.", nameof(smooth));
        if (rank < 0 || down.Length != (long)k * rank || up.Length != (long)n * rank)
            throw new ArgumentException($"Low-rank factors of rank {rank} must be [{k}, {rank}] and [{n}, {rank}], got {down.Length} and {up.Length} values.");
        int min = bits == 4 ? -8 : -128, max = bits == 4 ? 7 : 127;
        foreach (sbyte w in weights)
            if (w < min || w > max) throw new ArgumentException($"A {bits}-bit weight code is {w}, outside [{min}, {max}].", nameof(weights));
        foreach (float s in scales)
            if (!(s >= 0) || !float.IsFinite(s)) throw new ArgumentException($"A weight scale is {s}; scales must be finite and not negative.", nameof(scales));
        foreach (float l in smooth)
            if (!(l > 0) || !float.IsFinite(l)) throw new ArgumentException($"A smoothing factor is {l}; factors must be finite and positive.", nameof(smooth));
        CheckFinite(down, nameof(down));
        CheckFinite(up, nameof(up));

        int panels = PanelCount;
        long weightBytes = (long)panels * PanelWidth * PaddedK * bits / 8;
        long scaleFloats = (long)panels * groups * PanelWidth;
        long downFloats = (long)k * PaddedRank, upFloats = (long)panels * BranchWidth * PanelWidth;
        try
        {
            _weights = (byte*)Alloc(weightBytes);
            _scales = (float*)Alloc(scaleFloats * sizeof(float));
            PackWeights(weights, n, k);
            new Span<float>(_scales, checked((int)scaleFloats)).Clear();
            for (int o = 0; o < n; o++)
            for (int g = 0; g < logicalGroups; g++)
                _scales[((long)(o / PanelWidth) * groups + g) * PanelWidth + o % PanelWidth] = scales[o * logicalGroups + g];
            if (!smooth.IsEmpty)
            {
                _invSmooth = (float*)Alloc((long)k * sizeof(float));
                for (int i = 0; i < k; i++) _invSmooth[i] = 1f / smooth[i];
            }
            if (rank > 0)
            {
                _down = (float*)Alloc(downFloats * sizeof(float));
                new Span<float>(_down, checked((int)downFloats)).Clear();
                for (int i = 0; i < k; i++)
                for (int j = 0; j < rank; j++)
                    _down[(long)i * PaddedRank + j] = down[i * rank + j];
            }
            if (BranchWidth > 0)
            {
                _up = (float*)Alloc(upFloats * sizeof(float));
                new Span<float>(_up, checked((int)upFloats)).Clear();
                for (int o = 0; o < n; o++)
                for (int j = 0; j < rank; j++)
                    _up[((long)(o / PanelWidth) * BranchWidth + j) * PanelWidth + o % PanelWidth] = up[o * rank + j];
                if (asymmetricActivations)
                    for (int o = 0; o < n; o++)
                    for (int g = 0; g < logicalGroups; g++)
                    {
                        int sum = 0;
                        for (int i = g * groupSize; i < Math.Min(k, (g + 1) * groupSize); i++) sum += weights[o * k + i];
                        _up[((long)(o / PanelWidth) * BranchWidth + PaddedRank + g) * PanelWidth + o % PanelWidth] = scales[o * logicalGroups + g] * sum;
                    }
            }
        }
        catch
        {
            Free();
            throw;
        }
        _byteSize = weightBytes + scaleFloats * sizeof(float) + (_invSmooth != null ? (long)k * sizeof(float) : 0)
            + (rank > 0 ? downFloats * sizeof(float) : 0) + (BranchWidth > 0 ? upFloats * sizeof(float) : 0);
    }

    private void PackWeights(ReadOnlySpan<sbyte> weights, int n, int k)
    {
        int panels = PanelCount, kp = PaddedK, offset = WeightOffset;
        int Code(ReadOnlySpan<sbyte> w, int o, int i) => (o < n && i < k ? w[o * k + i] : 0) + offset;
        byte* dst = _weights;
        for (int p = 0; p < panels; p++)
        {
            if (Bits == 4)
            {
                for (int oct = 0; oct < kp / 8; oct++, dst += 64)
                for (int c = 0; c < PanelWidth; c++)
                for (int j = 0; j < 4; j++)
                {
                    int o = p * PanelWidth + c;
                    dst[4 * c + j] = (byte)(Code(weights, o, 8 * oct + j) | (Code(weights, o, 8 * oct + 4 + j) << 4));
                }
            }
            else
            {
                for (int quad = 0; quad < kp / 4; quad++, dst += 64)
                for (int c = 0; c < PanelWidth; c++)
                for (int j = 0; j < 4; j++)
                    dst[4 * c + j] = (byte)Code(weights, p * PanelWidth + c, 4 * quad + j);
            }
        }
    }

    // ------------------------------------------------------------------ packed data, for the kernels

    /// <summary>Packed weights of panel <paramref name="panel"/>: PaddedK * 8 (4-bit) or PaddedK * 16 (8-bit) bytes.</summary>
    internal byte* PanelWeights(int panel) => _weights + (long)panel * PanelWidth * PaddedK * Bits / 8;

    /// <summary>Weight scales of panel <paramref name="panel"/>: [Groups][16].</summary>
    internal float* PanelScales(int panel) => _scales + (long)panel * Groups * PanelWidth;

    /// <summary>1/λ [K], or null without smoothing.</summary>
    internal float* InvSmooth => _invSmooth;

    /// <summary>The low-rank down projection [K][PaddedRank] (applied to x̂), or null.</summary>
    internal float* Down => _down;

    /// <summary>Up projection of panel <paramref name="panel"/>: [BranchWidth][16].</summary>
    internal float* PanelUp(int panel) => _up + (long)panel * BranchWidth * PanelWidth;

    // ------------------------------------------------------------------ logical values, for references and tests

    /// <summary>Weight code w[n, k] (0 in the padding).</summary>
    public int Weight(int n, int k)
    {
        int p = n / PanelWidth, c = n % PanelWidth;
        byte* w = PanelWeights(p);
        if (Bits == 8) return w[(long)(k / 4) * 64 + 4 * c + k % 4] - 128;
        byte b = w[(long)(k / 8) * 64 + 4 * c + k % 4];
        return ((k % 8) < 4 ? b & 0x0F : b >> 4) - 8;
    }

    public float Scale(int n, int group) => PanelScales(n / PanelWidth)[group * PanelWidth + n % PanelWidth];

    /// <summary>1/λ[k] (1 without smoothing).</summary>
    public float InvSmoothAt(int k) => _invSmooth != null ? _invSmooth[k] : 1f;

    public float DownAt(int k, int j) => _down[(long)k * PaddedRank + j];

    public float UpAt(int n, int j) => PanelUp(n / PanelWidth)[j * PanelWidth + n % PanelWidth];

    // ------------------------------------------------------------------ forward

    protected override void ForwardFast(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual, int ldr)
        => Forward(rows, m, bias, c, ldc, residual, ldr, IntegerGemm.BestPath(Bits));

    /// <summary><see cref="QuantizedMatrix.Forward"/> on a chosen kernel path (tests sweep every supported one).</summary>
    internal void Forward(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual, int ldr, IntegerGemmPath path)
    {
        Validate(rows, m, ldc, residual, ldr);
        if (m == 0) return;
        if (!IntegerGemm.IsSupported(path, Bits)) throw new PlatformNotSupportedException($"The {path} path cannot run {Format} on this machine.");
        IntegerGemm.Run(this, rows, m, bias, c, ldc, residual, ldr, path);
    }

    protected override void ReferenceRow(float* x, float* bias, float* y, float* residual)
    {
        int groups = Groups;
        var q = new sbyte[PaddedK];
        var scales = new float[groups];
        var lora = new double[Rank];
        var zeros = new float[groups];
        ActivationQuantizer.QuantizeRowReference(x, this, q, scales, lora, zeros);
        for (int o = 0; o < N; o++)
        {
            double sum = 0;
            for (int g = 0; g < groups; g++)
            {
                long dot = 0, weights = 0;
                for (int i = g * GroupSize; i < (g + 1) * GroupSize; i++)
                {
                    dot += q[i] * Weight(o, i);
                    weights += Weight(o, i);
                }
                sum += (double)scales[g] * Scale(o, g) * dot;
                if (AsymmetricActivations) sum += (double)zeros[g] * Scale(o, g) * weights;
            }
            for (int j = 0; j < Rank; j++) sum += lora[j] * UpAt(o, j);
            if (bias != null) sum += bias[o];
            if (residual != null) sum += residual[o];
            y[o] = (float)sum;
        }
    }

    private static void CheckFinite(ReadOnlySpan<float> values, string name)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) throw new ArgumentException($"{name} holds {v}; values must be finite.", name);
    }

    private static int RoundUp(int value, int multiple) => checked((value + multiple - 1) / multiple * multiple);

    private static void* Alloc(long bytes) => NativeBuffers.Allocate(Math.Max(bytes, 64));

    protected override void Free()
    {
        NativeBuffers.Free(_weights);
        NativeBuffers.Free(_scales);
        NativeBuffers.Free(_invSmooth);
        NativeBuffers.Free(_down);
        NativeBuffers.Free(_up);
        _weights = null;
        _scales = null;
        _invSmooth = null;
        _down = null;
        _up = null;
    }
}
