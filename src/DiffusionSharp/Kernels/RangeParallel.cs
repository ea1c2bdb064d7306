using System.Runtime.CompilerServices;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels;

/// <summary>
/// Splits a long memory-bound loop into fixed-size chunks over <see cref="ThreadScheduler.Current"/>. Chunk
/// boundaries depend only on the length, so anything computed per element is bitwise deterministic; below one chunk
/// it runs inline (a scheduler call costs microseconds, a small tensor less).
/// </summary>
internal static unsafe class RangeParallel
{
    /// <summary>Elements per chunk: 64K floats (256 KB), long enough to hide the wake-up, short enough to balance.</summary>
    public const long DefaultGrain = 1 << 16;

    internal interface IRangeBody
    {
        void Run(long start, long end);
    }

    public static void For<T>(long length, long grain, ref T body) where T : struct, IRangeBody
    {
        if (length <= 0) return;
        long chunks = (length + grain - 1) / grain;
        if (chunks == 1)
        {
            body.Run(0, length);
            return;
        }
        var context = new Context<T> { Body = Unsafe.AsPointer(ref body), Length = length, Grain = grain };
        ThreadScheduler.Current.For(checked((int)chunks), &Chunk<T>, &context);
    }

    private struct Context<T>
    {
        public void* Body;
        public long Length, Grain;
    }

    private static void Chunk<T>(void* context, int index) where T : struct, IRangeBody
    {
        ref Context<T> c = ref Unsafe.AsRef<Context<T>>(context);
        long start = index * c.Grain;
        Unsafe.AsRef<T>(c.Body).Run(start, Math.Min(c.Length, start + c.Grain));
    }
}
