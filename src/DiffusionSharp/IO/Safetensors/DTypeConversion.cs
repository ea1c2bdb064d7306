using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// Conversions between stored element types and float32, over little-endian bytes at any alignment
/// (files from other writers put F16/F32 tensors at odd offsets).
///
/// F16 -> F32 and BF16 -> F32 run on <see cref="Vector{T}"/> (256-bit with AVX2): F16 uses the exact
/// bit-manipulation widening (exponent rebias, subnormals renormalised by one float subtraction, Inf kept,
/// NaN payload kept and quieted); BF16 is a 16-bit shift. Every other path is scalar: those dtypes are rare in checkpoints.
/// The scalar twins in <c>DTypeConversion.Reference.cs</c> are the specification and the test oracle.
/// Writing (float32 -> F16/BF16) rounds to nearest even.
/// </summary>
internal static partial class DTypeConversion
{
    /// <summary>Converts <c>destination.Length</c> elements of <paramref name="dtype"/> from <paramref name="source"/>.</summary>
    public static void ToFloat32(SafetensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (source.Length != (long)destination.Length * dtype.BitSize() / 8)
            throw new ArgumentException($"{source.Length} bytes of {dtype.ToHeaderString()} do not hold {destination.Length} elements.");
        switch (dtype)
        {
            case SafetensorsDType.F32: source.CopyTo(MemoryMarshal.AsBytes(destination)); break;
            case SafetensorsDType.F16: HalfToFloat32(source, destination); break;
            case SafetensorsDType.BF16: BFloat16ToFloat32(source, destination); break;
            case SafetensorsDType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source[(8 * i)..]);
                break;
            case SafetensorsDType.U8: for (int i = 0; i < destination.Length; i++) destination[i] = source[i]; break;
            case SafetensorsDType.I8: for (int i = 0; i < destination.Length; i++) destination[i] = (sbyte)source[i]; break;
            case SafetensorsDType.I16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt16LittleEndian(source[(2 * i)..]);
                break;
            case SafetensorsDType.U16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]);
                break;
            case SafetensorsDType.I32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt32LittleEndian(source[(4 * i)..]);
                break;
            case SafetensorsDType.U32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt32LittleEndian(source[(4 * i)..]);
                break;
            case SafetensorsDType.I64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt64LittleEndian(source[(8 * i)..]);
                break;
            case SafetensorsDType.U64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadUInt64LittleEndian(source[(8 * i)..]);
                break;
            case SafetensorsDType.F8E4M3 or SafetensorsDType.F8E5M2 or SafetensorsDType.F8E4M3Fnuz
                or SafetensorsDType.F8E5M2Fnuz or SafetensorsDType.F8E8M0:
                float[] table = Float8Table(dtype);
                for (int i = 0; i < destination.Length; i++) destination[i] = table[source[i]];
                break;
            default:
                throw new NotSupportedException($"{dtype.ToHeaderString()} cannot be converted to float32.");
        }
    }

    /// <summary>F16 -> F32, exact for every one of the 65536 codes; NaNs keep their payload and come out quiet, as with F16C hardware and <see cref="Half"/>.</summary>
    public static void HalfToFloat32(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (source.Length < 2L * destination.Length)
            throw new ArgumentException($"{source.Length} bytes do not hold {destination.Length} 16-bit elements.", nameof(source));
        int n = destination.Length, i = 0;
        ref byte src = ref MemoryMarshal.GetReference(source);
        ref byte dst = ref Unsafe.As<float, byte>(ref MemoryMarshal.GetReference(destination));
        if (Vector.IsHardwareAccelerated)
        {
            int step = Vector<ushort>.Count, half = Vector<uint>.Count;
            for (; i <= n - step; i += step)
            {
                var h = Unsafe.ReadUnaligned<Vector<ushort>>(ref Unsafe.Add(ref src, 2 * i));
                Vector.Widen(h, out Vector<uint> lo, out Vector<uint> hi);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 4 * i), HalfBitsToFloat32(lo));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 4 * (i + half)), HalfBitsToFloat32(hi));
            }
        }
        for (; i < n; i++)
            destination[i] = HalfToFloat32Reference(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref src, 2 * i)));
    }

    /// <summary>F16 bits (zero-extended to 32) -> F32, lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> HalfBitsToFloat32(Vector<uint> x)
    {
        var expMask = new Vector<uint>(0x7C00u << 13);
        var rebias = new Vector<uint>((127u - 15u) << 23);
        Vector<uint> sign = Vector.ShiftLeft(x & new Vector<uint>(0x8000), 16);
        Vector<uint> bits = Vector.ShiftLeft(x & new Vector<uint>(0x7FFF), 13);   // exponent and mantissa in F32 position
        Vector<uint> exp = bits & expMask;
        Vector<uint> normal = bits + rebias;                                      // exponent bias 15 -> 127
        Vector<uint> quiet = Vector.GreaterThan(bits & new Vector<uint>(0x3FFu << 13), Vector<uint>.Zero) & new Vector<uint>(1u << 22);
        Vector<uint> infNan = (normal + rebias) | quiet;                          // exponent 31 -> 255; NaNs quieted
        Vector<uint> subnormal = Vector.AsVectorUInt32(                           // m * 2^-24, exactly
            Vector.AsVectorSingle(normal + new Vector<uint>(1u << 23)) - Vector.AsVectorSingle(new Vector<uint>(113u << 23)));
        Vector<uint> result = Vector.ConditionalSelect(Vector.Equals(exp, expMask), infNan,
            Vector.ConditionalSelect(Vector.Equals(exp, Vector<uint>.Zero), subnormal, normal));
        return Vector.AsVectorSingle(result | sign);
    }

    /// <summary>BF16 -> F32: the 16 bits become the top half of the float, exactly.</summary>
    public static void BFloat16ToFloat32(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (source.Length < 2L * destination.Length)
            throw new ArgumentException($"{source.Length} bytes do not hold {destination.Length} 16-bit elements.", nameof(source));
        int n = destination.Length, i = 0;
        ref byte src = ref MemoryMarshal.GetReference(source);
        ref byte dst = ref Unsafe.As<float, byte>(ref MemoryMarshal.GetReference(destination));
        if (Vector.IsHardwareAccelerated)
        {
            int step = Vector<ushort>.Count, half = Vector<uint>.Count;
            for (; i <= n - step; i += step)
            {
                var b = Unsafe.ReadUnaligned<Vector<ushort>>(ref Unsafe.Add(ref src, 2 * i));
                Vector.Widen(b, out Vector<uint> lo, out Vector<uint> hi);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 4 * i), Vector.ShiftLeft(lo, 16));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 4 * (i + half)), Vector.ShiftLeft(hi, 16));
            }
        }
        for (; i < n; i++)
            destination[i] = BFloat16ToFloat32Reference(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref src, 2 * i)));
    }

    /// <summary>F32 -> F16 bits, round to nearest even (overflow to infinity, NaN stays NaN).</summary>
    public static ushort Float32ToHalfBits(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>F32 -> BF16 bits, round to nearest even; NaN becomes the canonical 0x7FC0, as PyTorch's c10::BFloat16.</summary>
    public static ushort Float32ToBFloat16Bits(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    private static readonly float[] E4M3 = BuildTable(SafetensorsDType.F8E4M3);
    private static readonly float[] E5M2 = BuildTable(SafetensorsDType.F8E5M2);
    private static readonly float[] E4M3Fnuz = BuildTable(SafetensorsDType.F8E4M3Fnuz);
    private static readonly float[] E5M2Fnuz = BuildTable(SafetensorsDType.F8E5M2Fnuz);
    private static readonly float[] E8M0 = BuildTable(SafetensorsDType.F8E8M0);

    private static float[] Float8Table(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F8E4M3 => E4M3,
        SafetensorsDType.F8E5M2 => E5M2,
        SafetensorsDType.F8E4M3Fnuz => E4M3Fnuz,
        SafetensorsDType.F8E5M2Fnuz => E5M2Fnuz,
        _ => E8M0,
    };

    private static float[] BuildTable(SafetensorsDType dtype)
    {
        var table = new float[256];
        for (int code = 0; code < 256; code++) table[code] = Float8ToFloat32Reference(dtype, (byte)code);
        return table;
    }
}
