using System.Runtime.InteropServices;

namespace DiffusionSharp.Kernels;

/// <summary>
/// Per-thread native work buffers of the kernels, one per <see cref="ScratchSlot"/>, 64-byte aligned, grown on demand and
/// kept for the thread's lifetime (freed by a finalizer when the thread ends). Kernels take no managed memory per call.
/// A pointer stays valid until the same slot is asked for again on the same thread.
/// </summary>
internal static unsafe class Scratch
{
    [ThreadStatic] private static Buffers? t_buffers;

    /// <summary>At least <paramref name="floats"/> floats for <paramref name="slot"/>; contents unspecified.</summary>
    public static float* Floats(ScratchSlot slot, long floats) => (float*)Bytes(slot, floats * sizeof(float));

    /// <summary>At least <paramref name="count"/> doubles for <paramref name="slot"/>; contents unspecified.</summary>
    public static double* Doubles(ScratchSlot slot, long count) => (double*)Bytes(slot, count * sizeof(double));

    /// <summary>At least <paramref name="bytes"/> bytes for <paramref name="slot"/>; contents unspecified.</summary>
    public static void* Bytes(ScratchSlot slot, long bytes)
    {
        var b = t_buffers ??= new Buffers();
        int i = (int)slot;
        if (b.Sizes[i] < bytes)
        {
            NativeBuffers.Free(b.Pointers[i]);
            b.Pointers[i] = null;
            b.Sizes[i] = 0;
            long size = (bytes + 4095) & ~4095L;
            b.Pointers[i] = NativeBuffers.Allocate(size);
            b.Sizes[i] = size;
        }
        return b.Pointers[i];
    }

    private sealed class Buffers
    {
        public readonly void*[] Pointers = new void*[(int)ScratchSlot.Count];
        public readonly long[] Sizes = new long[(int)ScratchSlot.Count];

        ~Buffers()
        {
            foreach (void* p in Pointers)
                NativeBuffers.Free(p);
        }
    }
}

/// <summary>Named per-thread buffers; a kernel that calls another never shares a slot with it.</summary>
internal enum ScratchSlot
{
    GemmA,
    GemmPartial,
    GemmB,
    GemmWidened,
    GemmWidenedMatrix,
    AttentionKeys,
    AttentionValues,
    AttentionQueries,
    AttentionScores,
    AttentionOutput,
    NormStatistics,
    QuantActivations,
    QuantScales,
    QuantCorrections,
    QuantLowRank,
    QuantRow,
    QuantSmoothed,
    QuantDequantized,
    WinogradInput,
    WinogradProducts,
    WinogradFilters,
    Count,
}
