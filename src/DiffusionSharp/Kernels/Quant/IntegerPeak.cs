using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// This machine's int8 multiply-add ceiling as .NET 10 can reach it, measured in-process so the integer GEMMs can be
/// reported as a fraction of it: the better of 12 independent chains of <c>vpmaddubsw</c> + <c>vpaddw</c> on 512-bit
/// registers (64 u8 x s8 multiply-adds per pair, the W4A4 kernel's inner pair; each chain feeds its accumulator back as
/// the byte operand, so the JIT cannot hoist the multiply out of the loop) and of <c>vpdpbusd</c> on 256-bit
/// registers (32 per instruction, AVX-VNNI). Counted as 2 operations per multiply-add (GOP/s), like FLOPs; 0 where
/// neither instruction set exists. Best of a few runs of about <c>runTime</c>, on a private scheduler.
/// </summary>
public static unsafe class IntegerPeak
{
    private const int Chains = 12;

    public static double Int8Gops(int threads, TimeSpan runTime, int repeats = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        double best = 0;
        if (Avx512BW.IsSupported && Vector512.IsHardwareAccelerated) best = Math.Max(best, Measure(threads, runTime, repeats, &MaddubsLoop, 64));
        if (AvxVnni.IsSupported) best = Math.Max(best, Measure(threads, runTime, repeats, &VnniLoop, 32));
        return best;
    }

    private struct Args
    {
        public long Iterations;
        public delegate*<long, int> Loop;
        public int Sink;
    }

    private static double Measure(int threads, TimeSpan runTime, int repeats, delegate*<long, int> loop, int macsPerStep)
    {
        using var scheduler = new ThreadScheduler(threads);
        var args = new Args { Iterations = 1 << 14, Loop = loop };
        double seconds = Time(scheduler, ref args, threads);
        while (seconds < 0.01) { args.Iterations *= 4; seconds = Time(scheduler, ref args, threads); }
        args.Iterations = (long)Math.Max(args.Iterations, args.Iterations * runTime.TotalSeconds / seconds);
        double best = 0;
        for (int r = 0; r < repeats; r++)
        {
            seconds = Time(scheduler, ref args, threads);
            best = Math.Max(best, 2.0 * threads * args.Iterations * Chains * macsPerStep / seconds / 1e9);
        }
        return best;
    }

    private static double Time(ThreadScheduler scheduler, ref Args args, int threads)
    {
        long start = Stopwatch.GetTimestamp();
        scheduler.For(threads, &Run, Unsafe.AsPointer(ref args));
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static void Run(void* context, int thread)
    {
        ref Args a = ref Unsafe.AsRef<Args>(context);
        int sum = a.Loop(a.Iterations);
        if (sum == 42) a.Sink = sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int MaddubsLoop(long iterations)
    {
        var x = Vector512.Create((sbyte)1);
        Vector512<short> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default;
        Vector512<short> a6 = default, a7 = default, a8 = default, a9 = default, aa = default, ab = default;
        for (long i = 0; i < iterations; i++)
        {
            a0 += Avx512BW.MultiplyAddAdjacent(a0.AsByte(), x); a1 += Avx512BW.MultiplyAddAdjacent(a1.AsByte(), x);
            a2 += Avx512BW.MultiplyAddAdjacent(a2.AsByte(), x); a3 += Avx512BW.MultiplyAddAdjacent(a3.AsByte(), x);
            a4 += Avx512BW.MultiplyAddAdjacent(a4.AsByte(), x); a5 += Avx512BW.MultiplyAddAdjacent(a5.AsByte(), x);
            a6 += Avx512BW.MultiplyAddAdjacent(a6.AsByte(), x); a7 += Avx512BW.MultiplyAddAdjacent(a7.AsByte(), x);
            a8 += Avx512BW.MultiplyAddAdjacent(a8.AsByte(), x); a9 += Avx512BW.MultiplyAddAdjacent(a9.AsByte(), x);
            aa += Avx512BW.MultiplyAddAdjacent(aa.AsByte(), x); ab += Avx512BW.MultiplyAddAdjacent(ab.AsByte(), x);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + aa + ab);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int VnniLoop(long iterations)
    {
        var w = Vector256.Create((byte)3);
        var x = Vector256.Create((sbyte)1);
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default;
        Vector256<int> a6 = default, a7 = default, a8 = default, a9 = default, aa = default, ab = default;
        for (long i = 0; i < iterations; i++)
        {
            a0 = AvxVnni.MultiplyWideningAndAdd(a0, w, x); a1 = AvxVnni.MultiplyWideningAndAdd(a1, w, x);
            a2 = AvxVnni.MultiplyWideningAndAdd(a2, w, x); a3 = AvxVnni.MultiplyWideningAndAdd(a3, w, x);
            a4 = AvxVnni.MultiplyWideningAndAdd(a4, w, x); a5 = AvxVnni.MultiplyWideningAndAdd(a5, w, x);
            a6 = AvxVnni.MultiplyWideningAndAdd(a6, w, x); a7 = AvxVnni.MultiplyWideningAndAdd(a7, w, x);
            a8 = AvxVnni.MultiplyWideningAndAdd(a8, w, x); a9 = AvxVnni.MultiplyWideningAndAdd(a9, w, x);
            aa = AvxVnni.MultiplyWideningAndAdd(aa, w, x); ab = AvxVnni.MultiplyWideningAndAdd(ab, w, x);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + aa + ab);
    }
}
