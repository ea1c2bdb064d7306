using System.Text;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Tests.IO.Png;

public class Crc32Tests
{
    [Fact]
    public void CheckValue_Of123456789_IsCBF43926() =>
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));

    [Fact]
    public void IendChunkCrc_IsAE426082() =>
        Assert.Equal(0xAE426082u, Crc32.Compute("IEND"u8));

    [Fact]
    public void EmptyInput_IsZero() => Assert.Equal(0u, Crc32.Compute([]));

    [Fact]
    public void Update_ContinuesAcrossSplits()
    {
        byte[] data = Encoding.ASCII.GetBytes("The quick brown fox jumps over the lazy dog");
        Assert.Equal(0x414FA339u, Crc32.Compute(data)); // the widely published CRC-32 of this sentence
        for (int split = 0; split <= data.Length; split++)
            Assert.Equal(0x414FA339u, Crc32.Update(Crc32.Compute(data.AsSpan(0, split)), data.AsSpan(split)));
    }
}
