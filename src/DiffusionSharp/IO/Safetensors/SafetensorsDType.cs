namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// Element types of the safetensors format. Members are declared in the order of the reference enum
/// (<c>Dtype</c> in huggingface/safetensors <c>safetensors/src/tensor.rs</c>), which is increasing alignment:
/// the writer sorts tensors by this order, descending, as the reference writer does.
/// <see cref="SafetensorsDTypeExtensions.ToHeaderString"/> gives the string used in the file header.
/// </summary>
public enum SafetensorsDType
{
    /// <summary><c>BOOL</c>, one byte per element.</summary>
    Bool,
    /// <summary><c>F4</c>, OCP MX FP4 (E2M1), 4 bits.</summary>
    F4,
    /// <summary><c>F6_E2M3</c>, OCP MX FP6, 6 bits.</summary>
    F6E2M3,
    /// <summary><c>F6_E3M2</c>, OCP MX FP6, 6 bits.</summary>
    F6E3M2,
    /// <summary><c>U8</c>.</summary>
    U8,
    /// <summary><c>I8</c>.</summary>
    I8,
    /// <summary><c>F8_E5M2</c>: 1 sign, 5 exponent (bias 15), 2 mantissa bits; has infinities (the top byte of an F16).</summary>
    F8E5M2,
    /// <summary><c>F8_E4M3</c>: the "fn" variant, bias 7, no infinities, NaN = S.1111.111, max 448.</summary>
    F8E4M3,
    /// <summary><c>F8_E8M0</c>: an unsigned power of two 2^(e-127) (MX scale); 0xFF is NaN.</summary>
    F8E8M0,
    /// <summary><c>F8_E4M3FNUZ</c>: bias 8, no infinities, no negative zero, 0x80 is NaN, max 240.</summary>
    F8E4M3Fnuz,
    /// <summary><c>F8_E5M2FNUZ</c>: bias 16, no infinities, no negative zero, 0x80 is NaN.</summary>
    F8E5M2Fnuz,
    /// <summary><c>I16</c>.</summary>
    I16,
    /// <summary><c>U16</c>.</summary>
    U16,
    /// <summary><c>F16</c>, IEEE 754 binary16.</summary>
    F16,
    /// <summary><c>BF16</c>, bfloat16 (the top half of an F32).</summary>
    BF16,
    /// <summary><c>I32</c>.</summary>
    I32,
    /// <summary><c>U32</c>.</summary>
    U32,
    /// <summary><c>F32</c>, IEEE 754 binary32.</summary>
    F32,
    /// <summary><c>C64</c>, complex with two F32 parts.</summary>
    C64,
    /// <summary><c>F64</c>, IEEE 754 binary64.</summary>
    F64,
    /// <summary><c>I64</c>.</summary>
    I64,
    /// <summary><c>U64</c>.</summary>
    U64,
}

public static class SafetensorsDTypeExtensions
{
    private static readonly Dictionary<string, SafetensorsDType> ByHeaderString =
        Enum.GetValues<SafetensorsDType>().ToDictionary(d => d.ToHeaderString(), StringComparer.Ordinal);

    /// <summary>Size of one element in bits (4 and 6 for the sub-byte MX types).</summary>
    public static int BitSize(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F4 => 4,
        SafetensorsDType.F6E2M3 or SafetensorsDType.F6E3M2 => 6,
        SafetensorsDType.Bool or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8E5M2
            or SafetensorsDType.F8E4M3 or SafetensorsDType.F8E8M0 or SafetensorsDType.F8E4M3Fnuz
            or SafetensorsDType.F8E5M2Fnuz => 8,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 16,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 32,
        SafetensorsDType.C64 or SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>The dtype string of the file header: <c>"F16"</c>, <c>"F8_E4M3"</c>, <c>"BOOL"</c>...</summary>
    public static string ToHeaderString(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool => "BOOL",
        SafetensorsDType.F6E2M3 => "F6_E2M3",
        SafetensorsDType.F6E3M2 => "F6_E3M2",
        SafetensorsDType.F8E5M2 => "F8_E5M2",
        SafetensorsDType.F8E4M3 => "F8_E4M3",
        SafetensorsDType.F8E8M0 => "F8_E8M0",
        SafetensorsDType.F8E4M3Fnuz => "F8_E4M3FNUZ",
        SafetensorsDType.F8E5M2Fnuz => "F8_E5M2FNUZ",
        _ when Enum.IsDefined(dtype) => dtype.ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>Whether <see cref="SafetensorsFile.ReadFloat32(string)"/> can convert this dtype (every real type but BOOL, F4, F6 and C64).</summary>
    public static bool CanConvertToFloat32(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool or SafetensorsDType.F4 or SafetensorsDType.F6E2M3 or SafetensorsDType.F6E3M2
            or SafetensorsDType.C64 => false,
        _ => Enum.IsDefined(dtype),
    };

    /// <summary>Parses a header dtype string (exact, case-sensitive, as the reference parser).</summary>
    public static bool TryParseHeaderString(string value, out SafetensorsDType dtype) => ByHeaderString.TryGetValue(value, out dtype);
}
