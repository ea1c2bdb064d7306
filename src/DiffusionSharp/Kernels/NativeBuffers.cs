using System.Runtime.InteropServices;

namespace DiffusionSharp.Kernels;

/// <summary>
/// Native memory for the engine's large, long-lived buffers (packed weights, kernel scratch): 64-byte aligned, and on
/// Linux, from <see cref="HugePageThreshold"/> up, aligned to 2 MiB and advised for transparent huge pages
/// (<c>madvise(MADV_HUGEPAGE)</c>; the kernel's default "madvise" mode backs only such regions with them).
/// <para>
/// Why: the first touch of a fresh page is the dominant cost of loading a model on a virtual machine. Measured on the
/// 2-vCPU cloud VM of docs/BENCHMARKS.md (`bench/DiffusionSharp.Benchmarks -- first-touch`): 3.4-5.4 s to touch 1 GiB
/// in 4 KiB pages (13-20 µs a page), 1.6-2.3 s in 2 MiB pages; zeroing the same GiB once touched takes 0.05 s. SD 1.5
/// packs 4.3 GB of fp32 weights at load. Elsewhere, or where the advice is refused, this is plain
/// <see cref="NativeMemory.AlignedAlloc(nuint, nuint)"/>.
/// </para>
/// </summary>
public static unsafe partial class NativeBuffers
{
    /// <summary>Buffers of at least this many bytes get huge-page alignment and advice.</summary>
    public const long HugePageThreshold = 2 << 20;

    private const nuint HugePageSize = 2 << 20;
    private const int MadviseHugePage = 14;
    private static bool s_adviceUnavailable = !OperatingSystem.IsLinux();

    /// <summary>At least <paramref name="bytes"/> bytes (≥ 1), 64-byte aligned, contents unspecified; free with <see cref="Free"/>.</summary>
    public static void* Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        nuint size = (nuint)Math.Max(bytes, 1);
        if (bytes < HugePageThreshold || s_adviceUnavailable) return NativeMemory.AlignedAlloc(size, 64);
        void* p = NativeMemory.AlignedAlloc(size, HugePageSize);
        try
        {
            Madvise(p, size, MadviseHugePage);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_adviceUnavailable = true;
        }
        return p;
    }

    /// <summary>Frees a buffer from <see cref="Allocate"/> (null is ignored).</summary>
    public static void Free(void* buffer)
    {
        if (buffer != null) NativeMemory.AlignedFree(buffer);
    }

    // The advice is a hint: its result (0, or -1 where the kernel has no THP) changes nothing here.
    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
