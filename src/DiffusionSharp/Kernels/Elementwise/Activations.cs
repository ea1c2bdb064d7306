using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Elementwise;

public enum ActivationKind
{
    None,
    /// <summary>x * sigmoid(x).</summary>
    Silu,
    /// <summary>Exact (erf) GELU, as PyTorch's default <c>F.gelu</c>.</summary>
    Gelu,
    /// <summary>CLIP's x * sigmoid(1.702 x).</summary>
    QuickGelu,
}

/// <summary>The gate of a gated feed-forward: value * act(gate).</summary>
public enum GateKind
{
    /// <summary>GEGLU: value * gelu(gate) (Stable Diffusion).</summary>
    Geglu,
    /// <summary>Swish-gated: value * silu(gate) (MobileDiffusion).</summary>
    Swiglu,
}

/// <summary>
/// Pointwise activations, in place or out of place, vectorized (16 lanes) and split over threads in 64K-element
/// chunks when large (the SD VAE's 512x512x128 tensors are 33 M elements); each with a double-precision reference.
/// Measured (Zen 5, .NET 10, machine shared): SiLU over 33.6 M elements 8.9 ms on one core, 4.4 ms on two (61 GB/s,
/// memory-bound); GEGLU 4096 x 1280 3.3 / 1.5 ms. Exp comes from <see cref="VectorMath.Exp(Vector512{float})"/>: .NET's
/// <c>Vector512.Exp</c> made these several times slower.
/// </summary>
public static unsafe class Activations
{
    public static void Apply(ActivationKind kind, float* x, float* y, long n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Element count cannot be negative.");
        if (kind == ActivationKind.None && x == y) return;
        if (KernelSettings.UseReference) { ApplyReference(kind, x, y, n); return; }
        var body = new ApplyBody { Kind = kind, X = x, Y = y };
        RangeParallel.For(n, RangeParallel.DefaultGrain, ref body);
    }

    /// <summary>The spec: y[i] = act(x[i]) in double.</summary>
    public static void ApplyReference(ActivationKind kind, float* x, float* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = (float)Reference(kind, x[i]);
    }

    private struct ApplyBody : RangeParallel.IRangeBody
    {
        public ActivationKind Kind;
        public float* X, Y;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            if (Kind == ActivationKind.None)
            {
                Buffer.MemoryCopy(X + start, Y + start, (end - start) * sizeof(float), (end - start) * sizeof(float));
                return;
            }
            long j = start;
            for (; j <= end - 16; j += 16) Apply(Kind, Vector512.Load(X + j)).Store(Y + j);
            for (; j < end; j++) Y[j] = Apply(Kind, Vector512.Create(X[j])).ToScalar();
        }
    }

    /// <summary>
    /// y[r, i] = act(x[r, i]) over a [rows, width] block with row strides ldx and ldy (a column slice of a wider tensor,
    /// such as the gate half of a GEGLU projection); rows split over the threads. x and y must not overlap unless equal.
    /// </summary>
    public static void ApplyRows(ActivationKind kind, float* x, int ldx, int rows, int width, float* y, int ldy)
    {
        if (rows < 0 || width < 0 || ldx < width || ldy < width)
            throw new ArgumentException($"Activation over rows: invalid shape [{rows}, {width}] with strides {ldx}, {ldy}.");
        if (KernelSettings.UseReference)
        {
            for (long r = 0; r < rows; r++) ApplyReference(kind, x + r * ldx, y + r * ldy, width);
            return;
        }
        var body = new RowsBody { Kind = kind, X = x, Ldx = ldx, Y = y, Ldy = ldy, Width = width };
        RangeParallel.For(rows, Math.Max(1, RangeParallel.DefaultGrain / Math.Max(1, width)), ref body);
    }

    private struct RowsBody : RangeParallel.IRangeBody
    {
        public ActivationKind Kind;
        public float* X, Y;
        public int Ldx, Ldy, Width;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            var row = new ApplyBody { Kind = Kind };
            for (long r = start; r < end; r++)
            {
                row.X = X + r * Ldx;
                row.Y = Y + r * Ldy;
                row.Run(0, Width);
            }
        }
    }

    /// <summary>
    /// Gated activation over rows of [value | gate] (each <paramref name="width"/> wide; input row stride 2*width):
    /// y[r, i] = x[r, i] * act(x[r, width + i]). y [rows, width] must not overlap x unless y == x (then rows compact in
    /// place; that case runs on one thread, since row r's output overwrites input rows other threads still read).
    /// </summary>
    public static void Gated(GateKind kind, float* x, int rows, int width, float* y)
    {
        if (rows < 0 || width < 0) throw new ArgumentException($"Gated activation: invalid shape [{rows}, {width}].");
        if (KernelSettings.UseReference) { GatedReference(kind, x, rows, width, y); return; }
        var body = new GatedBody { Act = kind == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu, X = x, Y = y, Width = width };
        if (x == y) body.Run(0, rows);
        else RangeParallel.For(rows, Math.Max(1, RangeParallel.DefaultGrain / Math.Max(1, 2 * width)), ref body);
    }

    /// <summary>The spec of <see cref="Gated"/>, in double.</summary>
    public static void GatedReference(GateKind kind, float* x, int rows, int width, float* y)
    {
        var act = kind == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu;
        for (long r = 0; r < rows; r++)
        {
            float* value = x + r * 2 * width, gate = value + width, dst = y + r * width;
            for (int i = 0; i < width; i++) dst[i] = (float)(value[i] * Reference(act, gate[i]));
        }
    }

    private struct GatedBody : RangeParallel.IRangeBody
    {
        public ActivationKind Act;
        public float* X, Y;
        public int Width;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(long start, long end)
        {
            for (long r = start; r < end; r++)
            {
                float* value = X + r * 2 * Width, gate = value + Width, dst = Y + r * Width;
                int j = 0;
                for (; j <= Width - 16; j += 16) (Vector512.Load(value + j) * Apply(Act, Vector512.Load(gate + j))).Store(dst + j);
                for (; j < Width; j++) dst[j] = value[j] * Apply(Act, Vector512.Create(gate[j])).ToScalar();
            }
        }
    }

    public static double Reference(ActivationKind kind, double x) => kind switch
    {
        ActivationKind.None => x,
        ActivationKind.Silu => x / (1.0 + Math.Exp(-x)),
        ActivationKind.Gelu => 0.5 * x * (1.0 + Erf.Reference(x / Math.Sqrt(2.0))),
        ActivationKind.QuickGelu => x / (1.0 + Math.Exp(-1.702 * x)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(ActivationKind kind, Vector512<float> x) => kind switch
    {
        ActivationKind.Silu => Silu(x),
        ActivationKind.Gelu => Gelu(x),
        ActivationKind.QuickGelu => x / (Vector512<float>.One + VectorMath.Exp(x * Vector512.Create(-1.702f))),
        _ => x,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Silu(Vector512<float> x) => x / (Vector512<float>.One + VectorMath.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Gelu(Vector512<float> x)
        => Vector512.Create(0.5f) * x * (Vector512<float>.One + Erf.Fast(x * Vector512.Create(0.70710678118654752f)));
}
