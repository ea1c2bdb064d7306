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

/// <summary>Pointwise activations, in place or out of place, vectorized; each with a double-precision reference.</summary>
public static unsafe class Activations
{
    public static void Apply(ActivationKind kind, float* x, float* y, long n)
    {
        if (kind == ActivationKind.None)
        {
            if (x != y) Buffer.MemoryCopy(x, y, n * sizeof(float), n * sizeof(float));
            return;
        }
        if (KernelSettings.UseReference) { for (long i = 0; i < n; i++) y[i] = (float)Reference(kind, x[i]); return; }
        long j = 0;
        for (; j <= n - 16; j += 16) Apply(kind, Vector512.Load(x + j)).Store(y + j);
        for (; j < n; j++) y[j] = Apply(kind, Vector512.Create(x[j])).ToScalar();
    }

    /// <summary>
    /// Gated activation over rows of [value | gate] (each <paramref name="width"/> wide; input row stride 2*width):
    /// y[r, i] = x[r, i] * act(x[r, width + i]). y [rows, width] must not overlap x unless y == x (then rows compact in place).
    /// </summary>
    public static void Gated(GateKind kind, float* x, int rows, int width, float* y)
    {
        var act = kind == GateKind.Geglu ? ActivationKind.Gelu : ActivationKind.Silu;
        for (long r = 0; r < rows; r++)
        {
            float* value = x + r * 2 * width, gate = value + width, dst = y + r * width;
            if (KernelSettings.UseReference)
            {
                for (int i = 0; i < width; i++) dst[i] = (float)(value[i] * Reference(act, gate[i]));
                continue;
            }
            int j = 0;
            for (; j <= width - 16; j += 16) (Vector512.Load(value + j) * Apply(act, Vector512.Load(gate + j))).Store(dst + j);
            for (; j < width; j++) dst[j] = value[j] * Apply(act, Vector512.Create(gate[j])).ToScalar();
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
        ActivationKind.QuickGelu => x / (Vector512<float>.One + Vector512.Exp(x * Vector512.Create(-1.702f))),
        _ => x,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Silu(Vector512<float> x) => x / (Vector512<float>.One + Vector512.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Gelu(Vector512<float> x)
        => Vector512.Create(0.5f) * x * (Vector512<float>.One + Erf.Fast(x * Vector512.Create(0.70710678118654752f)));
}
