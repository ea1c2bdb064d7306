using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Norm;

namespace DiffusionSharp.Cli.Bench;

/// <summary>
/// One fused op and its unfused twin at a Stable Diffusion 1.5 512x512 shape (batch 2, as classifier-free guidance
/// runs the UNet), operands allocated once and filled with values in [-1, 1): what <c>diffusion bench fusions</c> times
/// beside the whole UNet step. Both run on the same operands, so the ratio is what the fusion buys on that op alone.
/// </summary>
public sealed unsafe class FusionOp : BenchOperands
{
    private Action _fused = () => { };
    private Action _unfused = () => { };

    private FusionOp(string fusion, string name)
    {
        Fusion = fusion;
        Name = name;
    }

    /// <summary>The fusion's switch name (<c>groupnorm-silu</c>, ...).</summary>
    public string Fusion { get; }
    public string Name { get; }

    public void RunFused() => _fused();
    public void RunUnfused() => _unfused();

    /// <summary>The ops <c>bench fusions</c> reports, one or two per fusion.</summary>
    public static IReadOnlyList<Func<FusionOp>> Sd15 { get; } =
    [
        () => GroupNormSilu(2, 64 * 64, 320),
        () => LinearBiasResidual(2 * 64 * 64, 320, 320),
        () => ConvTimeEmbedding(2, 32, 32, 640),
        () => Geglu(2 * 64 * 64, 320, 1280, onePass: false),
        () => Geglu(2 * 64 * 64, 320, 1280, onePass: true),
        () => Attention("flash-attention", 1, 64 * 64, 8, 40),
        () => Attention("softmax", 2, 32 * 32, 8, 80),
    ];

    /// <summary>GroupNorm (32 groups) + SiLU over [b, spatial, c]: one apply pass vs GroupNorm into an intermediate, then SiLU.</summary>
    public static FusionOp GroupNormSilu(int b, int spatial, int c)
    {
        var op = new FusionOp("groupnorm-silu", $"groupnorm+silu {b}x{spatial}x{c}");
        long n = (long)b * spatial * c;
        float* x = op.Alloc(n, 1), gamma = op.Alloc(c, 2), beta = op.Alloc(c, 3), normed = op.Alloc(n, 4), y = op.Alloc(n, 5);
        op._fused = () => GroupNormKernel.Forward(x, b, spatial, c, 32, 1e-5f, gamma, beta, y, silu: true);
        op._unfused = () => GroupNormKernel.ForwardUnfused(x, b, spatial, c, 32, 1e-5f, gamma, beta, normed, y);
        return op;
    }

    /// <summary>Linear M x N x K + bias + residual (attention's to_out): the epilogue vs the bare product, a bias pass, a residual pass.</summary>
    public static FusionOp LinearBiasResidual(int m, int n, int k)
    {
        var op = new FusionOp("epilogue", $"linear {m}x{n}x{k} + bias + residual");
        float* a = op.Alloc((long)m * k, 1), bias = op.Alloc(n, 2), residual = op.Alloc((long)m * n, 3);
        float* product = op.Alloc((long)m * n, 4), c = op.Alloc((long)m * n, 5);
        var w = op.Own(new PackedMatrix(new ReadOnlySpan<float>(op.Alloc((long)n * k, 6), n * k), n, k));
        op._fused = () => GemmKernel.Linear(a, k, m, w, bias, c, n, residual, n);
        op._unfused = () =>
        {
            GemmKernel.Linear(a, k, m, w, null, product, n);
            EpiloguePasses.Apply(product, m, n, bias, null, 0, residual, c);
        };
        return op;
    }

    /// <summary>ResnetBlock2D's conv1 + bias + time embedding over [b, h, w, c]: a per-image bias in the epilogue vs a broadcast add pass after the conv.</summary>
    public static FusionOp ConvTimeEmbedding(int b, int h, int w, int c)
    {
        var op = new FusionOp("temb", $"conv3x3 {b}x{h}x{w}x{c} + temb");
        var g = Conv2dGeometry.Same(b, h, w, c, c, 3);
        float* x = op.Alloc((long)b * h * w * c, 1), bias = op.Alloc(c, 2), temb = op.Alloc((long)b * c, 3), y = op.Alloc(g.OutputPixels * c, 4);
        var weights = op.Own(new ConvolutionWeights(new ReadOnlySpan<float>(op.Alloc((long)c * c * 9, 5), c * c * 9), c, c, 3, 3));
        op._fused = () => Conv2dKernel.Forward(x, g, weights, bias, y, null, temb);
        op._unfused = () =>
        {
            Conv2dKernel.Forward(x, g, weights, bias, y);
            EpiloguePasses.Apply(y, g.OutputPixels, c, null, temb, (long)h * w, null, y);
        };
        return op;
    }

    /// <summary>
    /// The feed-forward's GEGLU projection [rows, dim] -> [rows, inner]: the gate in the GEMM epilogue vs the projection
    /// written out and then either GELU(gate) into a tensor and value · that (the unfused twin) or, with
    /// <paramref name="onePass"/>, the one gated pass the engine ran before the epilogue fusion.
    /// </summary>
    public static FusionOp Geglu(int rows, int dim, int inner, bool onePass)
    {
        var op = new FusionOp("geglu", $"geglu proj {rows}x(2x{inner})x{dim} vs {(onePass ? "1 pass" : "2 passes")}");
        int n = 2 * inner, w = GemmKernel.GateBlock, blocks = rows * inner / w;
        float* x = op.Alloc((long)rows * dim, 1), bias = op.Alloc(n, 2), projected = op.Alloc((long)rows * n, 3);
        float* activated = op.Alloc((long)rows * inner, 4), y = op.Alloc((long)rows * inner, 5);
        var weights = op.Own(new PackedMatrix(new ReadOnlySpan<float>(op.Alloc((long)n * dim, 6), n * dim), n, dim));
        op._fused = () => GemmKernel.LinearGated(x, dim, rows, weights, bias, GateKind.Geglu, y, inner);
        op._unfused = onePass
            ? () =>
            {
                GemmKernel.Linear(x, dim, rows, weights, bias, projected, n);
                Activations.Gated(GateKind.Geglu, projected, blocks, w, y);
            }
            : () =>
            {
                GemmKernel.Linear(x, dim, rows, weights, bias, projected, n);
                Activations.ApplyRows(ActivationKind.Gelu, projected + w, 2 * w, blocks, w, activated, w);
                TensorOps.Multiply(projected, 2 * w, activated, w, blocks, w, y, w);
            };
        return op;
    }

    /// <summary>
    /// Softmax self-attention, batch b, over <paramref name="tokens"/> tokens: the flash kernel vs the partially fused
    /// softmax (<c>flash-attention</c>) or vs whole score matrices (<c>softmax</c>).
    /// </summary>
    public static FusionOp Attention(string fusion, int b, int tokens, int heads, int headDim)
    {
        var op = new FusionOp(fusion, $"self-attention {b}x{tokens} tokens {heads}x{headDim}");
        int width = heads * headDim;
        long n = (long)b * tokens * width;
        float* q = op.Alloc(n, 1), k = op.Alloc(n, 2), v = op.Alloc(n, 3), o = op.Alloc(n, 4);
        var ops = new AttentionOperands(q, width, k, width, v, width, o, width);
        float scale = 1f / MathF.Sqrt(headDim);
        op._fused = () => AttentionKernel.Forward(ops, b, heads, tokens, tokens, headDim, scale, AttentionActivation.Softmax, causal: false);
        op._unfused = fusion == "softmax"
            ? () => AttentionKernel.ForwardScoreMatrix(ops, b, heads, tokens, tokens, headDim, scale, AttentionActivation.Softmax)
            : () => AttentionKernel.ForwardPartialSoftmax(ops, b, heads, tokens, tokens, headDim, scale, AttentionActivation.Softmax);
        return op;
    }
}
