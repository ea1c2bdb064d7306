namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// A layer's weights in a quantized form, packed once at load for its kernels: the quantized counterpart of
/// <see cref="Gemm.PackedMatrix"/>. Logical shape [N, K] as PyTorch's <c>Linear.weight</c> (for a convolution K =
/// kh*kw*Cin in (ky, kx, ci) order). <see cref="Forward"/> computes c[m, n] = layer(row m)[n] + bias[n] (+ residual)
/// for the rows of an <see cref="ActivationRows"/>; <see cref="ForwardReference"/> is its scalar, double-accumulating
/// twin (the spec and test oracle), which <see cref="KernelSettings.UseReference"/> selects.
/// </summary>
public abstract unsafe class QuantizedMatrix : IDisposable
{
    protected QuantizedMatrix(int n, int k)
    {
        if (n <= 0 || k <= 0) throw new ArgumentException($"A quantized matrix needs positive sizes, got [{n}, {k}].");
        N = n;
        K = k;
    }

    /// <summary>Outputs.</summary>
    public int N { get; }

    /// <summary>Inputs per output.</summary>
    public int K { get; }

    /// <summary>Short name of the format (<c>w4a4</c>, <c>w8a8</c>, <c>nf4</c>) for reports.</summary>
    public abstract string Format { get; }

    /// <summary>Bytes of packed weights and side data this matrix holds.</summary>
    public abstract long ByteSize { get; }

    /// <summary>
    /// c[i, n] (row stride <paramref name="ldc"/>) = the layer applied to row i of <paramref name="rows"/>, plus
    /// <paramref name="bias"/>[n] and <paramref name="residual"/>[i, n] (row stride <paramref name="ldr"/>; may alias c)
    /// when given, for i &lt; <paramref name="m"/>. c must not overlap the rows' data.
    /// </summary>
    public void Forward(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual = null, int ldr = 0)
    {
        Validate(rows, m, ldc, residual, ldr);
        if (m == 0) return;
        if (KernelSettings.UseReference) ForwardReference(rows, m, bias, c, ldc, residual, ldr);
        else ForwardFast(rows, m, bias, c, ldc, residual, ldr);
    }

    /// <summary>The scalar reference of <see cref="Forward"/>: the spec, accumulating in double.</summary>
    public void ForwardReference(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual = null, int ldr = 0)
    {
        Validate(rows, m, ldc, residual, ldr);
        float[] row = new float[K];
        fixed (float* scratch = row)
            for (int i = 0; i < m; i++)
                ReferenceRow(rows.Row(i, scratch), bias, c + (long)i * ldc, residual != null ? residual + (long)i * ldr : null);
    }

    /// <summary>One output row of the reference: <paramref name="y"/>[n] for the K inputs <paramref name="x"/>.</summary>
    protected abstract void ReferenceRow(float* x, float* bias, float* y, float* residual);

    /// <summary>The optimized path on the best instruction set this process has.</summary>
    protected abstract void ForwardFast(in ActivationRows rows, int m, float* bias, float* c, int ldc, float* residual, int ldr);

    protected void Validate(in ActivationRows rows, int m, int ldc, float* residual, int ldr)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "Row count cannot be negative.");
        if (rows.K != K) throw new ArgumentException($"The rows have {rows.K} values, the {Format} matrix [{N}, {K}] needs {K}.", nameof(rows));
        if (ldc < N || (residual != null && ldr < N))
            throw new ArgumentException($"Output strides too small: ldc {ldc}, ldr {ldr} (N {N}).");
    }

    protected abstract void Free();

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    ~QuantizedMatrix() => Free();
}
