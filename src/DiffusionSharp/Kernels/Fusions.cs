namespace DiffusionSharp.Kernels;

/// <summary>
/// The memory-traffic fusions of "Speed Is All You Need" as this engine implements them, one flag each. A flag that is
/// off makes the fused op run its unfused twin: the separate kernels a naive engine would run, each writing its result
/// to memory for the next to read back. The twins compute the same function (equal to the fused result within a
/// stated tolerance, tested), so switching a fusion off only measures what it buys.
/// </summary>
[Flags]
public enum Fusion
{
    None = 0,
    /// <summary><c>groupnorm-silu</c>: GroupNorm and the SiLU after it in one apply pass; off: GroupNorm into an intermediate tensor, then a SiLU pass.</summary>
    GroupNormSilu = 1 << 0,
    /// <summary><c>epilogue</c>: bias and residual added by the GEMM/convolution epilogue; off: the product, then a bias pass, then a residual-add pass.</summary>
    Epilogue = 1 << 1,
    /// <summary><c>geglu</c>: value · gelu(gate) in one pass over the projection; off: split into two tensors, a GELU pass, a multiply pass.</summary>
    Geglu = 1 << 2,
    /// <summary><c>temb</c>: ResnetBlock2D's time-embedding add folded into conv1's epilogue as a per-(image, channel) bias; off: a broadcast add pass after conv1.</summary>
    TimestepEmbedding = 1 << 3,
    /// <summary><c>flash-attention</c>: online softmax over key blocks; off: the paper's partially fused softmax (whole score rows of a query block, exact max first).</summary>
    FlashAttention = 1 << 4,
    /// <summary><c>softmax</c>: the softmax fused with its two products per query block; off: whole [Tq, Tk] score matrices of every head, a softmax pass, then the value product.</summary>
    Softmax = 1 << 5,
    All = GroupNormSilu | Epilogue | Geglu | TimestepEmbedding | FlashAttention | Softmax,
}

/// <summary>
/// Process-wide fusion switches. <c>DIFFUSIONSHARP_UNFUSED=groupnorm-silu,epilogue,geglu,temb,flash-attention,softmax</c>
/// (any subset, or <c>all</c>) starts the process with those fusions off; <see cref="Enabled"/> changes them at run time
/// (benchmarks, tests). Decisions are taken on the calling thread when an op starts, so a change applies to the next op.
/// <see cref="KernelSettings.UseReference"/> takes precedence: reference kernels have no fused variants.
/// </summary>
public static class Fusions
{
    public const string EnvironmentVariable = "DIFFUSIONSHARP_UNFUSED";

    private static readonly (string Name, Fusion Flag)[] s_names =
    [
        ("groupnorm-silu", Fusion.GroupNormSilu),
        ("epilogue", Fusion.Epilogue),
        ("geglu", Fusion.Geglu),
        ("temb", Fusion.TimestepEmbedding),
        ("flash-attention", Fusion.FlashAttention),
        ("softmax", Fusion.Softmax),
    ];

    private static Fusion? s_enabled;

    /// <summary>The fusions in effect; read from <see cref="EnvironmentVariable"/> on first use (a bad value throws, naming it).</summary>
    public static Fusion Enabled
    {
        get => s_enabled ??= Fusion.All & ~Parse(Environment.GetEnvironmentVariable(EnvironmentVariable) ?? "", EnvironmentVariable);
        set => s_enabled = value & Fusion.All;
    }

    /// <summary>Whether every fusion in <paramref name="fusion"/> is on.</summary>
    public static bool IsOn(Fusion fusion) => (Enabled & fusion) == fusion;

    /// <summary>Every single fusion, in the order the benchmark reports them.</summary>
    public static IReadOnlyList<Fusion> Each { get; } = s_names.Select(n => n.Flag).ToArray();

    /// <summary>The short name of one fusion (<c>groupnorm-silu</c>, ...), as <see cref="EnvironmentVariable"/> spells it.</summary>
    public static string Name(Fusion fusion)
    {
        foreach (var (name, flag) in s_names)
            if (flag == fusion) return name;
        throw new ArgumentException($"{fusion} is not a single fusion.", nameof(fusion));
    }

    /// <summary>
    /// A comma-separated list of fusion names (or <c>all</c>; blank and empty items ignored) as flags.
    /// <paramref name="source"/> names where the list came from, for the error.
    /// </summary>
    public static Fusion Parse(string list, string source)
    {
        ArgumentNullException.ThrowIfNull(list);
        var result = Fusion.None;
        foreach (string item in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (item.Equals("all", StringComparison.OrdinalIgnoreCase)) { result = Fusion.All; continue; }
            var match = s_names.Where(n => n.Name.Equals(item, StringComparison.OrdinalIgnoreCase)).Select(n => n.Flag).FirstOrDefault();
            if (match == Fusion.None)
                throw new ArgumentException(
                    $"{source}: unknown fusion '{item}'; expected a comma-separated list of {string.Join(", ", s_names.Select(n => n.Name))}, or all.");
            result |= match;
        }
        return result;
    }
}
