using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// Vector widening of 16-bit weights on each instruction-set path: 32 (AVX-512), 16 (AVX2) or 8 (portable) weights per
/// iteration, zero-extended to 32-bit lanes, then bf16 &lt;&lt; 16 or the fp16 bit manipulation below; a scalar tail.
/// fp16, per lane h: o = (h &amp; 0x7FFF) &lt;&lt; 13 puts exponent and mantissa in fp32 position; adding 112 &lt;&lt; 23
/// re-biases the exponent (15 -> 127); an all-ones exponent (infinity, NaN) gets another 112 &lt;&lt; 23 so it becomes
/// 255; a zero exponent (zero, subnormal) is fixed as the float (o + 2^23) - 2^-14, exact by Sterbenz's lemma; then
/// the sign is OR-ed back: about 12 vector operations per 16 weights, against 1 for bf16. Inside the GEMM a widened
/// weight serves all the rows of a tile (at most 96, when that is all of M) or all M rows (the whole matrix is
/// widened once per call); measured costs in <see cref="GemmKernel"/>'s blocked driver.
/// </summary>
public static unsafe partial class WeightConversion
{
    private const uint Rebias = 112u << 23;
    private const uint ShiftedExponent = 0x7C00u << 13;
    private const uint Magic = 113u << 23;

    /// <summary>Widening on a chosen path (tests sweep every supported one).</summary>
    internal static void Widen(ushort* source, long count, WeightPrecision precision, float* destination, KernelIsa isa)
    {
        if (precision != WeightPrecision.Float16 && precision != WeightPrecision.BFloat16)
            throw new ArgumentOutOfRangeException(nameof(precision), precision, "Widen converts from a 16-bit precision.");
        bool half = precision == WeightPrecision.Float16;
        long i = 0;
        switch (isa)
        {
            case KernelIsa.Avx512:
                for (; i <= count - 32; i += 32)
                {
                    var (lower, upper) = Vector512.Widen(Vector512.Load(source + i));
                    (half ? HalfToSingle(lower) : BFloatToSingle(lower)).Store(destination + i);
                    (half ? HalfToSingle(upper) : BFloatToSingle(upper)).Store(destination + i + 16);
                }
                break;
            case KernelIsa.Avx2:
                for (; i <= count - 16; i += 16)
                {
                    var (lower, upper) = Vector256.Widen(Vector256.Load(source + i));
                    (half ? HalfToSingle(lower) : BFloatToSingle(lower)).Store(destination + i);
                    (half ? HalfToSingle(upper) : BFloatToSingle(upper)).Store(destination + i + 8);
                }
                break;
            default:
                for (; i <= count - 8; i += 8)
                {
                    var (lower, upper) = Vector128.Widen(Vector128.Load(source + i));
                    (half ? HalfToSingle(lower) : BFloatToSingle(lower)).Store(destination + i);
                    (half ? HalfToSingle(upper) : BFloatToSingle(upper)).Store(destination + i + 4);
                }
                break;
        }
        for (; i < count; i++) destination[i] = WidenReference(source[i], precision);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BFloatToSingle(Vector512<uint> h) => (h << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BFloatToSingle(Vector256<uint> h) => (h << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> BFloatToSingle(Vector128<uint> h) => (h << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalfToSingle(Vector512<uint> h)
    {
        var o = (h & Vector512.Create(0x7FFFu)) << 13;
        var exponent = o & Vector512.Create(ShiftedExponent);
        o += Vector512.Create(Rebias);
        o += Vector512.Equals(exponent, Vector512.Create(ShiftedExponent)) & Vector512.Create(Rebias);
        var subnormal = (o + Vector512.Create(1u << 23)).AsSingle() - Vector512.Create(Magic).AsSingle();
        var value = Vector512.ConditionalSelect(Vector512.Equals(exponent, Vector512<uint>.Zero), subnormal.AsUInt32(), o);
        return (value | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalfToSingle(Vector256<uint> h)
    {
        var o = (h & Vector256.Create(0x7FFFu)) << 13;
        var exponent = o & Vector256.Create(ShiftedExponent);
        o += Vector256.Create(Rebias);
        o += Vector256.Equals(exponent, Vector256.Create(ShiftedExponent)) & Vector256.Create(Rebias);
        var subnormal = (o + Vector256.Create(1u << 23)).AsSingle() - Vector256.Create(Magic).AsSingle();
        var value = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256<uint>.Zero), subnormal.AsUInt32(), o);
        return (value | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> HalfToSingle(Vector128<uint> h)
    {
        var o = (h & Vector128.Create(0x7FFFu)) << 13;
        var exponent = o & Vector128.Create(ShiftedExponent);
        o += Vector128.Create(Rebias);
        o += Vector128.Equals(exponent, Vector128.Create(ShiftedExponent)) & Vector128.Create(Rebias);
        var subnormal = (o + Vector128.Create(1u << 23)).AsSingle() - Vector128.Create(Magic).AsSingle();
        var value = Vector128.ConditionalSelect(Vector128.Equals(exponent, Vector128<uint>.Zero), subnormal.AsUInt32(), o);
        return (value | ((h & Vector128.Create(0x8000u)) << 16)).AsSingle();
    }
}
