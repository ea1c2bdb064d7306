using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Norm;
using DiffusionSharp.Kernels.Quant;

namespace DiffusionSharp.Cli.Bench;

/// <summary>
/// One kernel call at one Stable Diffusion 1.5 (512x512, latent 64x64) shape, its operands allocated once and filled
/// with values in [-1, 1): what <c>diffusion bench ops</c> times. <see cref="Flops"/> counts an FMA as two; memory-bound
/// ops count <see cref="Bytes"/> moved instead (and have no flops).
/// </summary>
/// <remarks>bench/DiffusionSharp.Benchmarks (KernelCases) holds the longer list, with reference twins, for BenchmarkDotNet.</remarks>
public sealed unsafe class KernelOp : BenchOperands
{
    private readonly Action<KernelOp> _body;
    private float* _a, _b, _c, _d;
    private PackedMatrix? _weight;
    private ConvolutionWeights? _conv;
    private WinogradWeights? _winograd;
    private QuantizedMatrix? _quantized;

    private KernelOp(string name, double flops, double bytes, Action<KernelOp> body, bool integer = false)
    {
        Name = name;
        Flops = flops;
        Bytes = bytes;
        _body = body;
        IsInteger = integer;
    }

    public string Name { get; }
    public double Flops { get; }
    public double Bytes { get; }
    public bool IsMemoryBound => Flops == 0;

    /// <summary>Integer multiply-adds (W4A4, W8A8): compared with the int8 ceiling, not the fp32 FMA one.</summary>
    public bool IsInteger { get; }

    public void Run() => _body(this);

    /// <summary>
    /// The shapes <c>bench ops</c> reports: the SD 1.5 UNet's main GEMMs, 3x3 convolutions (UNet levels, then the VAE
    /// decoder's 64x64x512 to 512x512x128), each as implicit GEMM and as Winograd, self-attention and GroupNorm+SiLU.
    /// </summary>
    public static IReadOnlyList<Func<KernelOp>> Sd15 { get; } =
    [
        () => Linear(4096, 320, 320),
        () => Linear(4096, 1280, 320),
        () => Linear(1024, 2560, 640),
        () => Linear(77, 320, 768),
        () => Conv3x3(64, 64, 320, 320),
        () => Conv3x3(64, 64, 320, 320, winograd: true),
        () => Conv3x3(32, 32, 640, 640),
        () => Conv3x3(32, 32, 640, 640, winograd: true),
        () => Conv3x3(16, 16, 1280, 1280),
        () => Conv3x3(16, 16, 1280, 1280, winograd: true),
        () => Conv3x3(64, 64, 512, 512),
        () => Conv3x3(64, 64, 512, 512, winograd: true),
        () => Conv3x3(128, 128, 512, 512),
        () => Conv3x3(128, 128, 512, 512, winograd: true),
        () => Conv3x3(256, 256, 256, 256),
        () => Conv3x3(256, 256, 256, 256, winograd: true),
        () => Conv3x3(512, 512, 128, 128),
        () => Conv3x3(512, 512, 128, 128, winograd: true),
        () => SelfAttention(4096, 8, 40),
        () => GroupNormSilu(64 * 64, 320),
    ];

    /// <summary>
    /// What <c>bench ops --precision fp16|bf16</c> adds: the GEMM shapes of <see cref="Sd15"/> with 16-bit weight panels,
    /// to set beside their fp32 rows (same process, same operands).
    /// </summary>
    public static IReadOnlyList<Func<KernelOp>> SixteenBit(WeightPrecision precision) =>
    [
        () => Linear(4096, 320, 320, precision),
        () => Linear(4096, 1280, 320, precision),
        () => Linear(1024, 2560, 640, precision),
        () => Linear(77, 320, 768, precision),
        () => Conv3x3(64, 64, 320, 320, precision: precision),
        () => Conv3x3(32, 32, 640, 640, precision: precision),
    ];

    /// <summary>
    /// What <c>bench ops --quant</c> adds: the quantized layers at SD 1.5 shapes — W4A4 with smoothing and the rank-32
    /// branch (SVDQuant's runtime), W4A4 without the branch (its cost), W8A8 and NF4 — operations counted as 2 M N K
    /// (the branch and the activation quantization are overhead inside the same time).
    /// </summary>
    public static IReadOnlyList<Func<KernelOp>> Quantized { get; } =
    [
        () => QuantizedLinear("w4a4", 4096, 320, 320, 32),
        () => QuantizedLinear("w4a4", 4096, 2560, 320, 32),
        () => QuantizedLinear("w4a4", 4096, 2560, 320, 0),
        () => QuantizedLinear("w4a4", 1024, 640, 2560, 32),
        () => QuantizedLinear("w4a4", 77, 320, 768, 32),
        () => QuantizedConv3x3("w4a4", 64, 64, 320, 320, 32),
        () => QuantizedConv3x3("w4a4", 32, 32, 640, 640, 32),
        () => QuantizedLinear("w8a8", 4096, 2560, 320, 0),
        () => QuantizedLinear("nf4", 4096, 2560, 320, 0),
    ];

    /// <summary>A quantized linear layer M x N x K of <paramref name="format"/> (w4a4, w8a8, nf4) with random codes.</summary>
    public static KernelOp QuantizedLinear(string format, int m, int n, int k, int rank)
    {
        var op = new KernelOp($"{Label(format, rank)} linear {m}x{n}x{k}", 2.0 * m * n * k, 0,
            x => x._quantized!.Forward(ActivationRows.Matrix(x._a, k, k), m, x._b, x._c, n), format != "nf4");
        op._a = op.Alloc((long)m * k, 1);                                               // [m, k]
        op._b = op.Alloc(n, 2);                                                         // [n]
        op._c = op.Alloc((long)m * n, 3);                                               // [m, n]
        op._quantized = op.Own(RandomQuantized(format, n, k, rank));
        return op;
    }

    /// <summary>A quantized 3x3 convolution (stride 1, padding 1) [1, h, w, cin] -> [1, h, w, cout].</summary>
    public static KernelOp QuantizedConv3x3(string format, int h, int w, int cin, int cout, int rank)
    {
        var g = Conv2dGeometry.Same(1, h, w, cin, cout, 3);
        var op = new KernelOp($"{Label(format, rank)} conv3x3 {h}x{w}x{cin}->{cout}", 2.0 * g.OutputPixels * cout * g.PatchSize, 0,
            x => x._quantized!.Forward(ActivationRows.Patches(x._a, g), (int)g.OutputPixels, x._b, x._c, cout), format != "nf4");
        op._a = op.Alloc((long)h * w * cin, 1);                                         // [1, h, w, cin]
        op._b = op.Alloc(cout, 2);                                                      // [cout]
        op._c = op.Alloc(g.OutputPixels * cout, 3);                                     // [1, h, w, cout]
        op._quantized = op.Own(RandomQuantized(format, cout, g.PatchSize, rank));
        return op;
    }

    private static string Label(string format, int rank) => rank > 0 ? $"{format}+r{rank}" : format;

    private static QuantizedMatrix RandomQuantized(string format, int n, int k, int rank)
    {
        var rng = new Random(7);
        float[] Floats(int count, float lo, float hi) => Enumerable.Range(0, count).Select(_ => lo + rng.NextSingle() * (hi - lo)).ToArray();
        switch (format)
        {
            case "nf4":
                return new Nf4Matrix(n, k, 64, Enumerable.Range(0, n * k).Select(_ => (byte)rng.Next(16)).ToArray(), Floats(n * ((k + 63) / 64), 0.01f, 0.1f));
            case "w8a8":
                return IntegerMatrix.W8A8(n, k, Enumerable.Range(0, n * k).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray(), Floats(n, 1e-4f, 1e-3f));
            default:
                var codes = Enumerable.Range(0, n * k).Select(_ => (sbyte)rng.Next(-8, 8)).ToArray();
                return IntegerMatrix.W4A4(n, k, 64, codes, Floats(n * ((k + 63) / 64), 0.001f, 0.01f), Floats(k, 0.5f, 2f), rank,
                    Floats(k * rank, -0.1f, 0.1f), Floats(n * rank, -0.1f, 0.1f));
        }
    }

    /// <summary>C [m, n] = A [m, k] · Wᵀ + bias: a linear layer (M x N x K), weights stored in <paramref name="precision"/>.</summary>
    public static KernelOp Linear(int m, int n, int k, WeightPrecision precision = WeightPrecision.Float32)
    {
        var op = new KernelOp($"{PrecisionLabel(precision)}linear {m}x{n}x{k}", 2.0 * m * n * k, 0,
            x => GemmKernel.Linear(x._a, k, m, x._weight!, x._b, x._c, n));
        op._a = op.Alloc((long)m * k, 1);                                               // [m, k]
        op._b = op.Alloc(n, 2);                                                         // [n]
        op._c = op.Alloc((long)m * n, 3);                                               // [m, n]
        op._weight = op.Own(new PackedMatrix(Values(op.Alloc((long)n * k, 4), (long)n * k), n, k, precision));
        return op;
    }

    /// <summary>
    /// 3x3 convolution, stride 1, padding 1, channels-last: [1, h, w, cin] -> [1, h, w, cout], filters stored in
    /// <paramref name="precision"/>, as implicit GEMM or as Winograd F(4x4, 3x3); both count the direct convolution's
    /// FLOPs, so Winograd's GFLOP/s (and % of peak) are "effective": direct FLOPs / time, above 100 % when it beats
    /// what any direct convolution could do.
    /// </summary>
    public static KernelOp Conv3x3(int h, int w, int cin, int cout, bool winograd = false, WeightPrecision precision = WeightPrecision.Float32)
    {
        var g = Conv2dGeometry.Same(1, h, w, cin, cout, 3);
        var op = new KernelOp($"{PrecisionLabel(precision)}conv3x3 {h}x{w}x{cin}->{cout}{(winograd ? " winograd" : "")}", 2.0 * g.OutputPixels * cout * g.PatchSize, 0,
            winograd ? x => Conv2dKernel.ForwardWinograd(x._a, g, x._winograd!, x._b, x._c) : x => Conv2dKernel.Forward(x._a, g, x._conv!, x._b, x._c));
        op._a = op.Alloc((long)h * w * cin, 1);                                         // [1, h, w, cin]
        op._b = op.Alloc(cout, 2);                                                      // [cout]
        op._c = op.Alloc(g.OutputPixels * cout, 3);                                     // [1, h, w, cout]
        op._conv = op.Own(new ConvolutionWeights(Values(op.Alloc((long)cout * cin * 9, 4), (long)cout * cin * 9), cout, cin, 3, 3, precision));
        if (winograd) op._winograd = op.Own(new WinogradWeights(op._conv));
        return op;
    }

    private static string PrecisionLabel(WeightPrecision precision) => precision == WeightPrecision.Float32 ? "" : precision.Name() + " ";

    /// <summary>Softmax self-attention over <paramref name="tokens"/> tokens, <paramref name="heads"/> heads of <paramref name="headDim"/>.</summary>
    public static KernelOp SelfAttention(int tokens, int heads, int headDim)
    {
        int width = heads * headDim;
        var op = new KernelOp($"self-attention {tokens} tokens {heads}x{headDim}", 4.0 * tokens * tokens * width, 0,
            x => AttentionKernel.Forward(new AttentionOperands(x._a, width, x._b, width, x._c, width, x._d, width),
                1, heads, tokens, tokens, headDim, 1f / MathF.Sqrt(headDim), AttentionActivation.Softmax, causal: false));
        op._a = op.Alloc((long)tokens * width, 1);                                      // q [T, heads*d]
        op._b = op.Alloc((long)tokens * width, 2);                                      // k [T, heads*d]
        op._c = op.Alloc((long)tokens * width, 3);                                      // v [T, heads*d]
        op._d = op.Alloc((long)tokens * width, 4);                                      // o [T, heads*d]
        return op;
    }

    /// <summary>GroupNorm (32 groups) fused with SiLU over [1, spatial, channels]; counts 12 bytes per element (two reads, one write).</summary>
    public static KernelOp GroupNormSilu(int spatial, int channels)
    {
        long n = (long)spatial * channels;
        var op = new KernelOp($"groupnorm+silu {spatial}x{channels}", 0, 3.0 * n * sizeof(float),
            x => GroupNormKernel.Forward(x._a, 1, spatial, channels, 32, 1e-5f, x._b, x._c, x._d, silu: true));
        op._a = op.Alloc(n, 1);                                                         // [1, spatial, C]
        op._b = op.Alloc(channels, 2);                                                  // gamma [C]
        op._c = op.Alloc(channels, 3);                                                  // beta [C]
        op._d = op.Alloc(n, 4);                                                         // [1, spatial, C]
        return op;
    }

    private static ReadOnlySpan<float> Values(float* p, long count) => new(p, checked((int)count));
}
