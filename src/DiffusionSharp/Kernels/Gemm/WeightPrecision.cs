namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// How a <see cref="PackedMatrix"/> stores its weights. Arithmetic is fp32 whatever the storage: 16-bit panels are
/// widened to fp32 (exactly) one K block at a time before the micro-kernel runs, so only memory and weight traffic
/// change. fp16 storage is lossless for fp16 checkpoints (SD files are fp16); bf16 keeps fp32's range with 8 bits of
/// mantissa.
/// </summary>
public enum WeightPrecision
{
    /// <summary>IEEE single precision, 4 bytes per weight.</summary>
    Float32,
    /// <summary>IEEE half precision (binary16), 2 bytes per weight; values rounded to nearest even, overflow to infinity.</summary>
    Float16,
    /// <summary>bfloat16 (the top half of an fp32), 2 bytes per weight; rounded to nearest even.</summary>
    BFloat16,
}

public static class WeightPrecisionExtensions
{
    /// <summary>Bytes per stored weight.</summary>
    public static int ElementSize(this WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float32 => sizeof(float),
        WeightPrecision.Float16 or WeightPrecision.BFloat16 => sizeof(ushort),
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown weight precision."),
    };

    /// <summary>The CLI name: <c>fp32</c>, <c>fp16</c>, <c>bf16</c>.</summary>
    public static string Name(this WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float32 => "fp32",
        WeightPrecision.Float16 => "fp16",
        WeightPrecision.BFloat16 => "bf16",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown weight precision."),
    };

    /// <summary>Parses a CLI name (<c>fp32</c>, <c>fp16</c>, <c>bf16</c>, case-insensitive); false for anything else.</summary>
    public static bool TryParse(string? text, out WeightPrecision precision)
    {
        switch (text?.ToLowerInvariant())
        {
            case "fp32": precision = WeightPrecision.Float32; return true;
            case "fp16": precision = WeightPrecision.Float16; return true;
            case "bf16": precision = WeightPrecision.BFloat16; return true;
            default: precision = WeightPrecision.Float32; return false;
        }
    }
}
