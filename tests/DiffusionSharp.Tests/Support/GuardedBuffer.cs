using System.Runtime.InteropServices;

namespace DiffusionSharp.Tests.Support;

/// <summary>
/// A float buffer for kernel tests whose last element ends exactly where an inaccessible page begins, so a kernel
/// that reads or writes even one float past the end faults at once (the test process dies with SIGSEGV, naming no
/// test, but it cannot pass). The bytes before the start are canaries, checked by <see cref="AssertIntact"/> and on
/// dispose, to catch writes before the start. On Linux the page is mapped with <c>mmap</c> and protected with
/// <c>mprotect(PROT_NONE)</c> through libc (.NET has no managed API for page protection); on other systems the
/// buffer is heap memory with canaries on both sides, checked after the fact.
/// The start is only 4-byte aligned unless the length is a multiple of 16, which also tests unaligned access.
/// </summary>
public sealed unsafe class GuardedBuffer : IDisposable
{
    private const int ProtNone = 0, ProtRead = 1, ProtWrite = 2, MapPrivate = 0x02, MapAnonymous = 0x20;
    private const int CanaryBytes = 256;
    private const byte Canary = 0xA5;

    private readonly byte* _base;
    private readonly nuint _mappedBytes;
    private readonly bool _mapped;
    private bool _disposed;

    /// <summary>First element. Valid until disposed.</summary>
    public float* Pointer { get; }

    public int Length { get; }

    public Span<float> Span => new(Pointer, Length);

    /// <summary>A buffer of <paramref name="length"/> floats, filled with <paramref name="fill"/>.</summary>
    public GuardedBuffer(int length, float fill = 0f)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        nuint dataBytes = (nuint)length * sizeof(float);
        if (OperatingSystem.IsLinux())
        {
            nuint page = (nuint)Environment.SystemPageSize;
            nuint usable = (dataBytes + CanaryBytes + page - 1) / page * page;
            _mappedBytes = usable + page;
            nint p = mmap(0, _mappedBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (p == -1) throw new InvalidOperationException($"mmap of {_mappedBytes} bytes failed (errno {Marshal.GetLastPInvokeError()}).");
            _base = (byte*)p;
            if (mprotect(p + (nint)usable, page, ProtNone) != 0)
                throw new InvalidOperationException($"mprotect failed (errno {Marshal.GetLastPInvokeError()}).");
            _mapped = true;
            Pointer = (float*)(_base + usable - dataBytes);
        }
        else
        {
            _mappedBytes = dataBytes + 2 * CanaryBytes;
            _base = (byte*)NativeMemory.Alloc(_mappedBytes);
            Pointer = (float*)(_base + CanaryBytes);
            new Span<byte>(_base + CanaryBytes + dataBytes, CanaryBytes).Fill(Canary);
        }
        new Span<byte>(_base, (int)((byte*)Pointer - _base)).Fill(Canary);
        Span.Fill(fill);
    }

    /// <summary>A guarded copy of <paramref name="values"/>.</summary>
    public static GuardedBuffer From(ReadOnlySpan<float> values)
    {
        var b = new GuardedBuffer(values.Length);
        values.CopyTo(b.Span);
        return b;
    }

    /// <summary>Fails if anything wrote into the canaries around the buffer.</summary>
    public void AssertIntact()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var before = new ReadOnlySpan<byte>(_base, (int)((byte*)Pointer - _base));
        if (before.IndexOfAnyExcept(Canary) is int i and >= 0)
            throw new Xunit.Sdk.XunitException($"Write before the start of a {Length}-float buffer, {before.Length - i} bytes before it.");
        if (!_mapped)
        {
            var after = new ReadOnlySpan<byte>((byte*)(Pointer + Length), CanaryBytes);
            if (after.IndexOfAnyExcept(Canary) is int j and >= 0)
                throw new Xunit.Sdk.XunitException($"Write past the end of a {Length}-float buffer, at byte {j} after it.");
        }
    }

    public float[] ToArray() => Span.ToArray();

    public void Dispose()
    {
        if (_disposed) return;
        try { AssertIntact(); }
        finally
        {
            _disposed = true;
            if (_mapped) munmap((nint)_base, _mappedBytes);
            else NativeMemory.Free(_base);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", SetLastError = true)]
    private static extern int mprotect(nint addr, nuint length, int prot);

    [DllImport("libc", SetLastError = true)]
    private static extern int munmap(nint addr, nuint length);
}
