using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Gemm;

public static unsafe partial class WeightConversion
{
    /// <summary>
    /// destination[i] = <see cref="Narrow(float, WeightPrecision)"/>(source[i]) for i &lt; count, bit for bit, 16 values
    /// per 512-bit vector where the machine has them (packing 16-bit weights at load: the scalar conversion cost
    /// SD 1.5's load about 2.5 ns a weight). fp16 is F. Giesen's round-to-nearest-even with integer operations (the
    /// subnormal range rounded by one float addition), NaNs keeping their top mantissa bits as <see cref="Half"/> does;
    /// bf16 rounds to nearest even and quiets NaNs.
    /// </summary>
    public static void Narrow(float* source, long count, WeightPrecision precision, ushort* destination)
    {
        if (precision != WeightPrecision.Float16 && precision != WeightPrecision.BFloat16)
            throw new ArgumentOutOfRangeException(nameof(precision), precision, "Narrow converts to a 16-bit precision.");
        long i = 0;
        if (Vector512.IsHardwareAccelerated && !KernelSettings.UseReference)
        {
            bool half = precision == WeightPrecision.Float16;
            for (; i <= count - 32; i += 32)
            {
                var lower = Vector512.Load(source + i).AsUInt32();
                var upper = Vector512.Load(source + i + 16).AsUInt32();
                var narrow = half ? Vector512.Narrow(SingleToHalfBits(lower), SingleToHalfBits(upper))
                                  : Vector512.Narrow(SingleToBFloatBits(lower), SingleToBFloatBits(upper));
                narrow.Store(destination + i);
            }
        }
        for (; i < count; i++) destination[i] = Narrow(source[i], precision);
    }

    /// <summary>The fp16 bits of each fp32 lane (in the low 16 bits), as <c>(Half)x</c> rounds them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> SingleToHalfBits(Vector512<uint> bits)
    {
        var sign = bits & Vector512.Create(0x8000_0000u);
        var f = bits ^ sign;                                                               // |x|
        var nan = Vector512.Create(0x7E00u) | (Vector512.ShiftRightLogical(f, 13) & Vector512.Create(0x3FFu));
        var subnormal = (f.AsSingle() + Vector512.Create(0.5f)).AsUInt32() - Vector512.Create(0x3F00_0000u);
        var odd = Vector512.ShiftRightLogical(f, 13) & Vector512<uint>.One;
        var normal = Vector512.ShiftRightLogical(f + Vector512.Create(0xC800_0FFFu) + odd, 13);
        var result = Vector512.ConditionalSelect(Vector512.GreaterThan(f, Vector512.Create(0x7F80_0000u)), nan,
            Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(f, Vector512.Create(0x4780_0000u)), Vector512.Create(0x7C00u),
                Vector512.ConditionalSelect(Vector512.LessThan(f, Vector512.Create(0x3880_0000u)), subnormal, normal)));
        return result | Vector512.ShiftRightLogical(sign, 16);
    }

    /// <summary>The bf16 bits of each fp32 lane, rounded to nearest even, NaNs quieted.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> SingleToBFloatBits(Vector512<uint> bits)
    {
        var isNan = Vector512.GreaterThan(bits & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        var rounded = Vector512.ShiftRightLogical(bits + Vector512.Create(0x7FFFu) + (Vector512.ShiftRightLogical(bits, 16) & Vector512<uint>.One), 16);
        return Vector512.ConditionalSelect(isNan, Vector512.ShiftRightLogical(bits, 16) | Vector512.Create(0x40u), rounded);
    }
}
