using DiffusionSharp.Kernels.Conv;

namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// The rows a quantized layer multiplies by its weights: a row-major matrix [M, K] (a linear layer, a 1x1
/// convolution), or the implicit im2col matrix of a channels-last convolution, whose row p is output pixel p's patch
/// [kh*kw*Cin] in (ky, kx, ci) order with zeros in the padding — the column order of <see cref="Gemm.PackedMatrix"/>
/// convolution filters and of the quantized files.
/// </summary>
public readonly unsafe struct ActivationRows
{
    private readonly float* _x;
    private readonly int _ld;
    private readonly Conv2dGeometry _g;
    private readonly bool _patches;

    /// <summary>Values per row.</summary>
    public int K { get; }

    private ActivationRows(float* x, int ld, int k, Conv2dGeometry g, bool patches)
    {
        _x = x;
        _ld = ld;
        K = k;
        _g = g;
        _patches = patches;
    }

    /// <summary>Rows of <paramref name="k"/> values, <paramref name="ld"/> apart.</summary>
    public static ActivationRows Matrix(float* x, int ld, int k)
    {
        if (k <= 0 || ld < k) throw new ArgumentException($"Matrix rows need 0 < K <= stride, got K {k}, stride {ld}.");
        return new ActivationRows(x, ld, k, default, patches: false);
    }

    /// <summary>The patches of a convolution over <paramref name="x"/> [B, H, W, Cin] with geometry <paramref name="g"/>.</summary>
    public static ActivationRows Patches(float* x, in Conv2dGeometry g)
    {
        g.Validate();
        return new ActivationRows(x, 0, g.PatchSize, g, patches: true);
    }

    /// <summary>First element of the matrix, or of the convolution input.</summary>
    internal float* Data => _x;

    /// <summary>Row stride of a matrix (0 for patches).</summary>
    internal int Stride => _ld;

    /// <summary>The convolution (default for a matrix).</summary>
    internal Conv2dGeometry Geometry => _g;

    /// <summary>Whether a row can be read in place (no gather): <see cref="Row"/> then ignores its scratch.</summary>
    public bool IsContiguous => !_patches;

    /// <summary>Row <paramref name="row"/>'s K values: the matrix row itself, or the patch gathered into
    /// <paramref name="scratch"/> (K floats).</summary>
    public float* Row(int row, float* scratch)
    {
        if (!_patches) return _x + (long)row * _ld;
        int cin = _g.InChannels, wo = _g.OutWidth, ho = _g.OutHeight;
        int ox = row % wo, oy = row / wo % ho, b = row / (wo * ho);
        float* dst = scratch;
        for (int ky = 0; ky < _g.KernelHeight; ky++)
        {
            int iy = oy * _g.StrideH - _g.PadTop + ky;
            for (int kx = 0; kx < _g.KernelWidth; kx++, dst += cin)
            {
                int ix = ox * _g.StrideW - _g.PadLeft + kx;
                if ((uint)iy < (uint)_g.InHeight && (uint)ix < (uint)_g.InWidth)
                    Buffer.MemoryCopy(_x + (((long)b * _g.InHeight + iy) * _g.InWidth + ix) * cin, dst, cin * sizeof(float), cin * sizeof(float));
                else
                    new Span<float>(dst, cin).Clear();
            }
        }
        return scratch;
    }
}
