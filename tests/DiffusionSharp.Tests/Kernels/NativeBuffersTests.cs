using DiffusionSharp.Kernels;

namespace DiffusionSharp.Tests.Kernels;

/// <summary><see cref="NativeBuffers"/>: alignment, usable size at both sides of the huge-page threshold, and freeing.</summary>
public unsafe class NativeBuffersTests
{
    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(4095L)]
    [InlineData(NativeBuffers.HugePageThreshold - 1)]
    [InlineData(NativeBuffers.HugePageThreshold)]
    [InlineData(3 * NativeBuffers.HugePageThreshold + 12345)]
    public void Buffers_are_aligned_and_writable_end_to_end(long bytes)
    {
        byte* p = (byte*)NativeBuffers.Allocate(bytes);
        try
        {
            Assert.True(p != null);
            Assert.Equal(0L, (long)p % 64);
            if (bytes >= NativeBuffers.HugePageThreshold && OperatingSystem.IsLinux()) Assert.Equal(0L, (long)p % (2 << 20));
            long usable = Math.Max(bytes, 1);
            new Span<byte>(p, (int)usable).Fill(0xA5);
            Assert.Equal(0xA5, p[0]);
            Assert.Equal(0xA5, p[usable - 1]);
        }
        finally
        {
            NativeBuffers.Free(p);
        }
    }

    [Fact]
    public void Negative_sizes_are_rejected_and_null_frees_nothing()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeBuffers.Allocate(-1));
        NativeBuffers.Free(null);
    }
}
