using System.Runtime.InteropServices;
using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Tests.IO.Safetensors;

/// <summary>The vectorised conversions against their scalar reference twins, and the references against the BCL and published values.</summary>
public class DTypeConversionTests
{
    [Fact]
    public void HalfToFloat32_AllCodes_MatchesSystemHalf_Bitwise()
    {
        var codes = new ushort[65536];
        for (int i = 0; i < codes.Length; i++) codes[i] = (ushort)i;
        var actual = new float[codes.Length];
        DTypeConversion.HalfToFloat32(MemoryMarshal.AsBytes(codes.AsSpan()), actual);
        for (int i = 0; i < codes.Length; i++)
        {
            uint expected = BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf((ushort)i));
            uint got = BitConverter.SingleToUInt32Bits(actual[i]);
            if (expected != got) Assert.Fail($"F16 0x{i:X4}: expected 0x{expected:X8}, got 0x{got:X8}");
        }
    }

    [Fact]
    public void BFloat16ToFloat32_AllCodes_AreTheTopHalfOfTheFloat()
    {
        var codes = new ushort[65536];
        for (int i = 0; i < codes.Length; i++) codes[i] = (ushort)i;
        var actual = new float[codes.Length];
        DTypeConversion.BFloat16ToFloat32(MemoryMarshal.AsBytes(codes.AsSpan()), actual);
        for (int i = 0; i < codes.Length; i++)
            if (BitConverter.SingleToUInt32Bits(actual[i]) != (uint)i << 16) Assert.Fail($"BF16 0x{i:X4} -> 0x{BitConverter.SingleToUInt32Bits(actual[i]):X8}");
    }

    public static TheoryData<SafetensorsDType> SixteenBit() => new([SafetensorsDType.F16, SafetensorsDType.BF16]);

    [Theory]
    [MemberData(nameof(SixteenBit))]
    public void VectorPath_MatchesReference_OverLengthsAndMisalignments(SafetensorsDType dtype)
    {
        var random = new Random(5);
        var raw = new byte[2 * 300 + 8];
        random.NextBytes(raw);
        foreach (int length in Enumerable.Range(0, 70).Concat([127, 128, 129, 255, 256, 257, 300]))
        {
            for (int misalign = 0; misalign < 4; misalign++)
            {
                var source = raw.AsSpan(misalign, 2 * length);
                var actual = new float[length + 1];
                actual[length] = 12345f; // sentinel: must not be overwritten
                DTypeConversion.ToFloat32(dtype, source, actual.AsSpan(0, length));
                Assert.Equal(12345f, actual[length]);
                for (int i = 0; i < length; i++)
                {
                    ushort bits = BitConverter.ToUInt16(source[(2 * i)..]);
                    float expected = dtype == SafetensorsDType.F16
                        ? DTypeConversion.HalfToFloat32Reference(bits)
                        : DTypeConversion.BFloat16ToFloat32Reference(bits);
                    if (BitConverter.SingleToUInt32Bits(expected) != BitConverter.SingleToUInt32Bits(actual[i]))
                        Assert.Fail($"{dtype} length {length} misalign {misalign} [{i}]: 0x{bits:X4} -> {actual[i]:R}, expected {expected:R}");
                }
            }
        }
    }

    [Theory]
    [InlineData(SafetensorsDType.F8E4M3, 0x7E, 448f)]
    [InlineData(SafetensorsDType.F8E4M3, 0xFE, -448f)]
    [InlineData(SafetensorsDType.F8E4M3, 0x01, 0.001953125f)]     // 2^-9, smallest subnormal
    [InlineData(SafetensorsDType.F8E4M3, 0x08, 0.015625f)]        // 2^-6, smallest normal
    [InlineData(SafetensorsDType.F8E4M3, 0x38, 1f)]
    [InlineData(SafetensorsDType.F8E5M2, 0x7B, 57344f)]
    [InlineData(SafetensorsDType.F8E5M2, 0x7C, float.PositiveInfinity)]
    [InlineData(SafetensorsDType.F8E5M2, 0xFC, float.NegativeInfinity)]
    [InlineData(SafetensorsDType.F8E5M2, 0x01, 1.52587890625e-05f) /* 2^-16 */]
    [InlineData(SafetensorsDType.F8E5M2, 0x3C, 1f)]
    [InlineData(SafetensorsDType.F8E4M3Fnuz, 0x7F, 240f)]
    [InlineData(SafetensorsDType.F8E4M3Fnuz, 0x40, 1f)]
    [InlineData(SafetensorsDType.F8E5M2Fnuz, 0x7F, 57344f)]
    [InlineData(SafetensorsDType.F8E5M2Fnuz, 0x40, 1f)]
    [InlineData(SafetensorsDType.F8E8M0, 127, 1f)]
    [InlineData(SafetensorsDType.F8E8M0, 0, 5.877471754e-39f)]   // 2^-127, a float32 subnormal
    [InlineData(SafetensorsDType.F8E8M0, 254, 1.701411835e38f)]  // 2^127
    public void Float8_PublishedValues(SafetensorsDType dtype, int code, float expected) =>
        Assert.Equal(expected, DTypeConversion.Float8ToFloat32Reference(dtype, (byte)code));

    [Theory]
    [InlineData(SafetensorsDType.F8E4M3, 0x7F)]
    [InlineData(SafetensorsDType.F8E4M3, 0xFF)]
    [InlineData(SafetensorsDType.F8E5M2, 0x7D)]
    [InlineData(SafetensorsDType.F8E4M3Fnuz, 0x80)]
    [InlineData(SafetensorsDType.F8E5M2Fnuz, 0x80)]
    [InlineData(SafetensorsDType.F8E8M0, 0xFF)]
    public void Float8_NaNCodes(SafetensorsDType dtype, int code) =>
        Assert.True(float.IsNaN(DTypeConversion.Float8ToFloat32Reference(dtype, (byte)code)));

    [Fact]
    public void Float32ToBFloat16_RoundsHalfwayToEven()
    {
        Assert.Equal(0x3F80, DTypeConversion.Float32ToBFloat16Bits(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie, even stays
        Assert.Equal(0x3F82, DTypeConversion.Float32ToBFloat16Bits(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie, odd rounds up
        Assert.Equal(0x3F81, DTypeConversion.Float32ToBFloat16Bits(BitConverter.UInt32BitsToSingle(0x3F808001)));
        Assert.Equal(0x7F80, DTypeConversion.Float32ToBFloat16Bits(float.MaxValue));                             // overflows to +inf
        Assert.Equal(0x7FC0, DTypeConversion.Float32ToBFloat16Bits(-float.NaN));
    }
}
