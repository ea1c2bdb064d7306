namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// fp32 &lt;-&gt; 16-bit weight conversion for <see cref="PackedMatrix"/> storage. <see cref="Narrow(float, WeightPrecision)"/> rounds once, at
/// packing; <see cref="Widen(ushort*, long, WeightPrecision, float*)"/> is exact (every fp16 and bf16 value is an
/// fp32 value) and runs inside the GEMM, one panel's K block at a time, so its vector paths must equal the scalar
/// reference bit for bit (NaNs stay NaN; their payload bits are not promised).
/// .NET 10 exposes neither F16C's <c>vcvtph2ps</c> nor AVX512-BF16 (<c>vcvtneps2bf16</c>, <c>vdpbf16ps</c>), so the
/// vector paths widen with integer operations: bf16 is a 16-bit shift; fp16 re-biases the exponent and fixes the
/// subnormal and infinity/NaN cases with two compares (F. Giesen's "half to float" with a magic subtraction).
/// </summary>
public static unsafe partial class WeightConversion
{
    /// <summary>fp32 -> 16-bit storage: fp16 rounds to nearest even (overflow gives infinity); bf16 rounds to nearest
    /// even and keeps NaN a (quiet) NaN. Float32 is not a 16-bit format.</summary>
    public static ushort Narrow(float value, WeightPrecision precision)
    {
        switch (precision)
        {
            case WeightPrecision.Float16:
                return BitConverter.HalfToUInt16Bits((Half)value);
            case WeightPrecision.BFloat16:
                uint bits = BitConverter.SingleToUInt32Bits(value);
                if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
                return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
            default:
                throw new ArgumentOutOfRangeException(nameof(precision), precision, "Narrow converts to a 16-bit precision.");
        }
    }

    /// <summary>16-bit storage -> fp32, exactly (scalar reference).</summary>
    public static float WidenReference(ushort bits, WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float16 => (float)BitConverter.UInt16BitsToHalf(bits),
        WeightPrecision.BFloat16 => BitConverter.UInt32BitsToSingle((uint)bits << 16),
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Widen converts from a 16-bit precision."),
    };

    /// <summary>destination[i] = widen(source[i]) for i &lt; count, on the best instruction-set path.</summary>
    public static void Widen(ushort* source, long count, WeightPrecision precision, float* destination)
    {
        if (KernelSettings.UseReference) WidenReference(source, count, precision, destination);
        else Widen(source, count, precision, destination, KernelSettings.BestIsa);
    }

    public static void WidenReference(ushort* source, long count, WeightPrecision precision, float* destination)
    {
        for (long i = 0; i < count; i++) destination[i] = WidenReference(source[i], precision);
    }
}
