namespace DiffusionSharp.IO.Safetensors;

/// <summary>Scalar reference conversions: the definition of each format, and the oracle for the vector paths.</summary>
internal static partial class DTypeConversion
{
    public static float HalfToFloat32Reference(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    public static float BFloat16ToFloat32Reference(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// Decodes one FP8 code. E5M2 is the top byte of an F16. E4M3 ("fn"): bias 7, S.1111.111 is NaN, no infinity.
    /// The FNUZ variants (bias 8 and 16) have no infinity and no negative zero: 0x80 is their only NaN.
    /// E8M0 is 2^(code - 127), with 0xFF the NaN.
    /// </summary>
    public static float Float8ToFloat32Reference(SafetensorsDType dtype, byte code)
    {
        bool negative = (code & 0x80) != 0;
        switch (dtype)
        {
            case SafetensorsDType.F8E5M2:
                return HalfToFloat32Reference((ushort)(code << 8));
            case SafetensorsDType.F8E4M3:
                if ((code & 0x7F) == 0x7F) return float.NaN;
                return Minifloat(negative, (code >> 3) & 0xF, code & 0x7, mantissaBits: 3, bias: 7);
            case SafetensorsDType.F8E4M3Fnuz:
                if (code == 0x80) return float.NaN;
                return Minifloat(negative, (code >> 3) & 0xF, code & 0x7, mantissaBits: 3, bias: 8);
            case SafetensorsDType.F8E5M2Fnuz:
                if (code == 0x80) return float.NaN;
                return Minifloat(negative, (code >> 2) & 0x1F, code & 0x3, mantissaBits: 2, bias: 16);
            case SafetensorsDType.F8E8M0:
                return code == 0xFF ? float.NaN : float.ScaleB(1f, code - 127);
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not an FP8 dtype.");
        }
    }

    /// <summary>(-1)^s * 2^(e - bias) * (1 + m / 2^mbits), or 2^(1 - bias) * m / 2^mbits when e = 0.</summary>
    private static float Minifloat(bool negative, int exponent, int mantissa, int mantissaBits, int bias)
    {
        float magnitude = exponent == 0
            ? float.ScaleB(mantissa, 1 - bias - mantissaBits)
            : float.ScaleB((1 << mantissaBits) + mantissa, exponent - bias - mantissaBits);
        return negative ? -magnitude : magnitude;
    }
}
