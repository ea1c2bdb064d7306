using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// Weight-only 4-bit NormalFloat (QLoRA's NF4, as bitsandbytes stores it): W[n, k] ≈ Nf4[code[n, k]] · absmax[n, g],
/// one absmax per output and group of <see cref="GroupSize"/> inputs, activations stay fp32. At each forward the codes
/// are dequantized into fp32 GEMM panels in per-thread scratch (<see cref="PackedMatrix"/> layout, one layer at a time)
/// and the fp32 GEMM runs on them: the memory of 4 bits, the speed of fp32 minus the dequantization (O(N K) per call,
/// against O(M N K) for the product). Codes are stored two per byte, row-major [N, ceil(K/2)], low nibble first.
/// </summary>
public sealed unsafe class Nf4Matrix : QuantizedMatrix
{
    /// <summary>The 16 NF4 levels (bitsandbytes <c>create_normal_map</c>, the values its kernels hard-code).</summary>
    public static ReadOnlySpan<float> Levels =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    private byte* _codes;
    private float* _absmax;

    public int GroupSize { get; }
    public int Groups => (K + GroupSize - 1) / GroupSize;
    private int RowBytes => (K + 1) / 2;

    public override string Format => "nf4";
    public override long ByteSize => (long)N * RowBytes + (long)N * Groups * sizeof(float);

    /// <summary><paramref name="codes"/> [n, k] level indices 0..15; <paramref name="absmax"/> [n, ceil(k / groupSize)].</summary>
    public Nf4Matrix(int n, int k, int groupSize, ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax) : base(n, k)
    {
        if (groupSize <= 0) throw new ArgumentException($"The NF4 group size must be positive, got {groupSize}.", nameof(groupSize));
        GroupSize = groupSize;
        if (codes.Length != (long)n * k) throw new ArgumentException($"Codes hold {codes.Length} values; [{n}, {k}] needs {(long)n * k}.", nameof(codes));
        if (absmax.Length != (long)n * Groups) throw new ArgumentException($"Absmax holds {absmax.Length} values; [{n}, {Groups}] needed.", nameof(absmax));
        foreach (byte c in codes)
            if (c > 15) throw new ArgumentException($"An NF4 code is {c}, outside 0..15.", nameof(codes));
        foreach (float s in absmax)
            if (!(s >= 0) || !float.IsFinite(s)) throw new ArgumentException($"An NF4 absmax is {s}; it must be finite and not negative.", nameof(absmax));
        _codes = (byte*)NativeBuffers.Allocate((long)n * RowBytes);
        _absmax = (float*)NativeBuffers.Allocate((long)n * Groups * sizeof(float));
        new Span<byte>(_codes, n * RowBytes).Clear();
        for (int o = 0; o < n; o++)
        for (int i = 0; i < k; i++)
            _codes[(long)o * RowBytes + i / 2] |= (byte)(codes[o * k + i] << (4 * (i % 2)));
        absmax.CopyTo(new Span<float>(_absmax, n * Groups));
    }

    /// <summary>The dequantized weight W[n, k], as the kernels compute it (one fp32 multiply).</summary>
    public float this[int n, int k]
    {
        get
        {
            int code = (_codes[(long)n * RowBytes + k / 2] >> (4 * (k % 2))) & 0x0F;
            return Levels[code] * _absmax[(long)n * Groups + k / GroupSize];
        }
    }

    protected override void ReferenceRow(float* x, float* bias, float* y, float* residual)
    {
        for (int o = 0; o < N; o++)
        {
            double sum = bias != null ? bias[o] : 0.0;
            for (int i = 0; i < K; i++) sum += (double)x[i] * this[o, i];
            if (residual != null) sum += residual[o];
            y[o] = (float)sum;
        }
    }

    protected override void ForwardFast(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual, int ldr)
        => Forward(rows, m, bias, c, ldc, residual, ldr, KernelSettings.BestIsa);

    internal void Forward(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual, int ldr, KernelIsa isa)
    {
        Validate(rows, m, ldc, residual, ldr);
        if (m == 0) return;
        int panels = (N + PackedMatrix.PanelWidth - 1) / PackedMatrix.PanelWidth;
        float* dequantized = Scratch.Floats(ScratchSlot.QuantDequantized, (long)panels * PackedMatrix.PanelWidth * K);
        var args = new DequantizeArgs { Codes = _codes, Absmax = _absmax, Destination = dequantized, N = N, K = K, Groups = Groups, GroupSize = GroupSize, RowBytes = RowBytes };
        ThreadScheduler.Current.For(panels, &DequantizePanel, &args);
        if (rows.IsContiguous)
        {
            var problem = new GemmKernel.Problem<GemmKernel.RowMajorRows>(new GemmKernel.RowMajorRows(rows.Data, rows.Stride),
                m, N, K, dequantized, 1f, bias, c, ldc, residual, ldr);
            GemmKernel.Run(ref problem, isa);
        }
        else
        {
            var problem = new GemmKernel.Problem<Conv2dKernel.PatchRows>(new Conv2dKernel.PatchRows(rows.Data, rows.Geometry),
                m, N, K, dequantized, 1f, bias, c, ldc, residual, ldr);
            GemmKernel.Run(ref problem, isa);
        }
    }

    private struct DequantizeArgs
    {
        public byte* Codes;
        public float* Absmax;
        public float* Destination;
        public int N, K, Groups, GroupSize, RowBytes;
    }

    /// <summary>Panel p of the fp32 weights: K rows of 32 lanes (outputs 32p..32p+31, zeros past N), written in order.</summary>
    private static void DequantizePanel(void* context, int panel)
    {
        ref DequantizeArgs a = ref Unsafe.AsRef<DequantizeArgs>(context);
        float* dst = a.Destination + (long)panel * PackedMatrix.PanelWidth * a.K;
        int o0 = panel * PackedMatrix.PanelWidth, lanes = Math.Min(PackedMatrix.PanelWidth, a.N - o0);
        ReadOnlySpan<float> levels = Levels;
        for (int i = 0; i < a.K; i++, dst += PackedMatrix.PanelWidth)
        {
            int shift = 4 * (i % 2), group = i / a.GroupSize;
            byte* codes = a.Codes + (long)o0 * a.RowBytes + i / 2;
            float* absmax = a.Absmax + (long)o0 * a.Groups + group;
            for (int lane = 0; lane < lanes; lane++)
                dst[lane] = levels[(codes[(long)lane * a.RowBytes] >> shift) & 0x0F] * absmax[(long)lane * a.Groups];
            for (int lane = lanes; lane < PackedMatrix.PanelWidth; lane++) dst[lane] = 0f;
        }
    }

    protected override void Free()
    {
        NativeBuffers.Free(_codes);
        NativeBuffers.Free(_absmax);
        _codes = null;
        _absmax = null;
    }
}
