using System.Runtime.InteropServices;
using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Kernels.Norm;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// One kernel call at one SD 1.5 shape with its operands allocated once: what both the quick report and the
/// BenchmarkDotNet suites time. <see cref="Flops"/> counts an FMA as two; memory-bound cases count bytes instead.
/// </summary>
public sealed unsafe class KernelCase : IDisposable
{
    private readonly List<nint> _buffers = [];
    private readonly List<IDisposable> _owned = [];

    public required string Name { get; init; }
    public double Flops { get; init; }
    public double Bytes { get; init; }
    public required Action<KernelCase> Body { get; init; }
    public Action<KernelCase>? Reference { get; init; }

    public float* A, B, C, D, E;
    public PackedMatrix? Weight;
    public ConvolutionWeights? Conv;
    public WinogradWeights? Winograd;

    public void Run() => Body(this);

    public void RunReference() => (Reference ?? throw new InvalidOperationException($"{Name} has no reference case."))(this);

    public float* Alloc(long floats, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
        _buffers.Add((nint)p);
        var rng = new Random(seed);
        for (long i = 0; i < floats; i++) p[i] = (float)(rng.NextDouble() * 2 - 1);
        return p;
    }

    public T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public void Dispose()
    {
        foreach (var p in _buffers) NativeMemory.AlignedFree((void*)p);
        foreach (var d in _owned) d.Dispose();
        _buffers.Clear();
        _owned.Clear();
    }
}

/// <summary>The SD 1.5 (512x512, latent 64x64) kernel shapes the reports use.</summary>
public static unsafe class KernelCases
{
    /// <summary>C [m, n] = A [m, k] · Wᵀ + bias (+ residual); <paramref name="isa"/> forces one micro-kernel path.</summary>
    public static KernelCase Linear(int m, int n, int k, bool residual = false, KernelIsa? isa = null)
    {
        var c = new KernelCase
        {
            Name = $"Linear {m}x{n}x{k}{(residual ? " +res" : "")}{(isa is { } i ? " " + i : "")}",
            Flops = 2.0 * m * n * k,
            Body = isa is { } forced
                ? x => GemmKernel.Linear(x.A, k, m, x.Weight!, x.B, x.C, n, x.D, residual ? n : 0, forced)
                : x => GemmKernel.Linear(x.A, k, m, x.Weight!, x.B, x.C, n, x.D, residual ? n : 0),
            Reference = x => GemmKernel.LinearReference(x.A, k, m, x.Weight!, x.B, x.C, n, x.D, residual ? n : 0),
        };
        c.A = c.Alloc((long)m * k, 1);
        c.B = c.Alloc(n, 2);
        c.C = c.Alloc((long)m * n, 3);
        c.D = residual ? c.Alloc((long)m * n, 4) : null;
        c.Weight = c.Own(new PackedMatrix(new ReadOnlySpan<float>(c.Alloc((long)n * k, 5), n * k), n, k));
        return c;
    }

    public static KernelCase MultiplyTransposed(int m, int n, int k)
    {
        var c = new KernelCase
        {
            Name = $"A·Bᵀ {m}x{n}x{k}",
            Flops = 2.0 * m * n * k,
            Body = x => GemmKernel.MultiplyTransposed(x.A, k, x.B, k, x.C, n, m, n, k, 1f),
            Reference = x => GemmKernel.MultiplyTransposedReference(x.A, k, x.B, k, x.C, n, m, n, k, 1f),
        };
        c.A = c.Alloc((long)m * k, 1);
        c.B = c.Alloc((long)n * k, 2);
        c.C = c.Alloc((long)m * n, 3);
        return c;
    }

    /// <summary>
    /// 3x3 convolution, padding 1, as implicit GEMM or (<paramref name="winograd"/>) Winograd F(4x4, 3x3); the Winograd
    /// case counts the direct convolution's FLOPs ("effective" GFLOP/s), so the two rates compare as times.
    /// </summary>
    public static KernelCase Conv3x3(int h, int w, int cin, int cout, int stride = 1, bool winograd = false, int batch = 1)
    {
        var g = new Conv2dGeometry(batch, h, w, cin, cout, 3, 3, stride, stride, 1, 1, 1, 1);
        var c = new KernelCase
        {
            Name = $"Conv3x3 {(batch > 1 ? $"{batch}x" : "")}{h}x{w}x{cin}->{cout}{(stride == 2 ? " s2" : "")}{(winograd ? " wino" : "")}",
            Flops = 2.0 * g.OutputPixels * cout * g.PatchSize,
            Body = winograd ? x => Conv2dKernel.ForwardWinograd(x.A, g, x.Winograd!, x.B, x.C) : x => Conv2dKernel.Forward(x.A, g, x.Conv!, x.B, x.C),
            Reference = winograd ? x => Conv2dKernel.ForwardWinogradReference(x.A, g, x.Winograd!, x.B, x.C, null)
                : x => Conv2dKernel.ForwardReference(x.A, g, x.Conv!, x.B, x.C, null),
        };
        c.A = c.Alloc(g.Batch * (long)h * w * cin, 1);
        c.B = c.Alloc(cout, 2);
        c.C = c.Alloc(g.OutputPixels * cout, 3);
        c.Conv = c.Own(new ConvolutionWeights(new ReadOnlySpan<float>(c.Alloc((long)cout * cin * 9, 4), cout * cin * 9), cout, cin, 3, 3));
        if (winograd) c.Winograd = c.Own(new WinogradWeights(c.Conv));
        return c;
    }

    public static KernelCase Attention(int tq, int tk, int heads, int d, AttentionActivation act = AttentionActivation.Softmax)
    {
        int width = heads * d;
        var c = new KernelCase
        {
            Name = $"Attention {tq}x{tk} {heads}x{d}{(act == AttentionActivation.Relu ? " relu" : "")}",
            Flops = 4.0 * tq * tk * width,
            Body = x => AttentionKernel.Forward(new AttentionOperands(x.A, width, x.B, width, x.C, width, x.D, width),
                1, heads, tq, tk, d, 1f / MathF.Sqrt(d), act, false),
            Reference = x => AttentionKernel.ForwardReference(new AttentionOperands(x.A, width, x.B, width, x.C, width, x.D, width),
                1, heads, tq, tk, d, 1f / MathF.Sqrt(d), act, false),
        };
        c.A = c.Alloc((long)tq * width, 1);
        c.B = c.Alloc((long)tk * width, 2);
        c.C = c.Alloc((long)tk * width, 3);
        c.D = c.Alloc((long)tq * width, 4);
        return c;
    }

    public static KernelCase GroupNorm(int spatial, int channels, bool silu)
    {
        long n = (long)spatial * channels;
        var c = new KernelCase
        {
            Name = $"GroupNorm{(silu ? "+SiLU" : "")} {spatial}x{channels}",
            Bytes = 3.0 * n * sizeof(float),
            Body = x => GroupNormKernel.Forward(x.A, 1, spatial, channels, 32, 1e-5f, x.B, x.C, x.D, silu),
            Reference = x => GroupNormKernel.ForwardReference(x.A, 1, spatial, channels, 32, 1e-5f, x.B, x.C, x.D, silu),
        };
        c.A = c.Alloc(n, 1);
        c.B = c.Alloc(channels, 2);
        c.C = c.Alloc(channels, 3);
        c.D = c.Alloc(n, 4);
        return c;
    }

    public static KernelCase LayerNorm(int rows, int cols)
    {
        long n = (long)rows * cols;
        var c = new KernelCase
        {
            Name = $"LayerNorm {rows}x{cols}",
            Bytes = 2.0 * n * sizeof(float),
            Body = x => LayerNormKernel.Forward(x.A, rows, cols, 1e-5f, x.B, x.C, x.D),
            Reference = x => LayerNormKernel.ForwardReference(x.A, rows, cols, 1e-5f, x.B, x.C, x.D),
        };
        c.A = c.Alloc(n, 1);
        c.B = c.Alloc(cols, 2);
        c.C = c.Alloc(cols, 3);
        c.D = c.Alloc(n, 4);
        return c;
    }

    public static KernelCase Geglu(int rows, int width)
    {
        var c = new KernelCase
        {
            Name = $"GEGLU {rows}x{width}",
            Bytes = 3.0 * rows * width * sizeof(float),
            Body = x => Activations.Gated(GateKind.Geglu, x.A, rows, width, x.B),
            Reference = x => Activations.GatedReference(GateKind.Geglu, x.A, rows, width, x.B),
        };
        c.A = c.Alloc(2L * rows * width, 1);
        c.B = c.Alloc((long)rows * width, 2);
        return c;
    }

    public static KernelCase Silu(long n)
    {
        var c = new KernelCase
        {
            Name = $"SiLU {n / 1e6:F1}M",
            Bytes = 2.0 * n * sizeof(float),
            Body = x => Activations.Apply(ActivationKind.Silu, x.A, x.B, n),
            Reference = x => Activations.ApplyReference(ActivationKind.Silu, x.A, x.B, n),
        };
        c.A = c.Alloc(n, 1);
        c.B = c.Alloc(n, 2);
        return c;
    }

    /// <summary>The quick report's list: the SD 1.5 shapes the brief names, then the memory-bound ops.</summary>
    public static IEnumerable<Func<KernelCase>> Sd15() =>
    [
        () => Linear(4096, 320, 320),
        () => Linear(4096, 1280, 320),
        () => Linear(4096, 320, 1280, residual: true),
        () => Linear(1024, 2560, 640),
        () => Linear(1024, 640, 2560),
        () => Linear(77, 320, 768),
        () => Linear(1, 1280, 1280),
        () => Conv3x3(64, 64, 320, 320),
        () => Conv3x3(64, 64, 320, 320, winograd: true),
        () => Conv3x3(32, 32, 640, 640),
        () => Conv3x3(32, 32, 640, 640, winograd: true),
        () => Conv3x3(16, 16, 1280, 1280),
        () => Conv3x3(16, 16, 1280, 1280, winograd: true),
        () => Conv3x3(64, 64, 320, 320, stride: 2),
        () => Conv3x3(64, 64, 4, 320),
        () => Conv3x3(64, 64, 512, 512),
        () => Conv3x3(64, 64, 512, 512, winograd: true),
        () => Conv3x3(128, 128, 512, 512),
        () => Conv3x3(128, 128, 512, 512, winograd: true),
        () => Conv3x3(256, 256, 256, 256),
        () => Conv3x3(256, 256, 256, 256, winograd: true),
        () => Conv3x3(512, 512, 128, 128),
        () => Conv3x3(512, 512, 128, 128, winograd: true),
        () => Attention(4096, 4096, 8, 40),
        () => Attention(4096, 77, 8, 40),
        () => Attention(1024, 1024, 8, 80),
        () => MultiplyTransposed(4096, 4096, 40),
        () => GroupNorm(4096, 320, silu: true),
        () => GroupNorm(512 * 512, 128, silu: true),
        () => LayerNorm(4096, 320),
        () => Geglu(4096, 1280),
        () => Silu(512L * 512 * 128),
    ];
}
