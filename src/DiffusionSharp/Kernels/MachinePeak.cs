using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Kernels;

/// <summary>
/// This machine's ceilings, measured in-process so kernel speeds can be reported as a fraction of them:
/// fp32 FMA throughput (16 independent vector accumulators per thread, widest accelerated vectors) and streaming
/// memory bandwidth (a STREAM-style triad a = b + s·c over arrays far larger than the caches, counted as 12 bytes
/// per element: two reads and one write, write-allocate traffic not counted). Each figure is the best of a few runs,
/// so a busy machine lowers it less than it lowers a single run. Threads come from a private
/// <see cref="ThreadScheduler"/> of the requested size.
/// </summary>
public static unsafe class MachinePeak
{
    private const int Accumulators = 16;

    /// <summary>Peak fp32 GFLOP/s (an FMA counts as two) with <paramref name="threads"/> threads, best of <paramref name="repeats"/> runs of about <paramref name="runTime"/>.</summary>
    public static double FmaGflops(int threads, TimeSpan runTime, int repeats = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        using var scheduler = new ThreadScheduler(threads);
        var args = new FmaArgs { Iterations = 1 << 16 };
        double seconds = TimeFma(scheduler, ref args, threads);
        while (seconds < 0.02) { args.Iterations *= 4; seconds = TimeFma(scheduler, ref args, threads); }
        args.Iterations = (long)Math.Max(args.Iterations, args.Iterations * runTime.TotalSeconds / seconds);
        double best = 0;
        for (int r = 0; r < repeats; r++)
        {
            seconds = TimeFma(scheduler, ref args, threads);
            best = Math.Max(best, threads * args.Iterations * (double)FlopsPerIteration / seconds / 1e9);
        }
        return best;
    }

    /// <summary>Streaming bandwidth in GB/s (1e9 bytes) with <paramref name="threads"/> threads over three arrays of <paramref name="megabytesPerArray"/> MB.</summary>
    public static double TriadGBps(int threads, int megabytesPerArray = 128, int repeats = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(megabytesPerArray, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        using var scheduler = new ThreadScheduler(threads);
        long n = (long)megabytesPerArray * (1 << 20) / sizeof(float);
        var args = new TriadArgs { N = n, Parts = threads };
        nuint bytes = (nuint)(n * sizeof(float));
        args.A = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        args.B = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        args.C = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        try
        {
            // Touch every page on the thread that will stream it, then time.
            scheduler.For(threads, &TriadInit, &args);
            double best = 0;
            for (int r = 0; r < repeats + 1; r++)
            {
                long start = Stopwatch.GetTimestamp();
                scheduler.For(threads, &Triad, &args);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (r > 0) best = Math.Max(best, 12.0 * n / seconds / 1e9);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(args.A);
            NativeMemory.AlignedFree(args.B);
            NativeMemory.AlignedFree(args.C);
        }
    }

    private static int FlopsPerIteration => 2 * Accumulators * (Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4);

    private struct FmaArgs
    {
        public long Iterations;
        public float Sink;
    }

    private static double TimeFma(ThreadScheduler scheduler, ref FmaArgs args, int threads)
    {
        long start = Stopwatch.GetTimestamp();
        scheduler.For(threads, &FmaLoop, Unsafe.AsPointer(ref args));
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static void FmaLoop(void* context, int thread)
    {
        ref FmaArgs a = ref Unsafe.AsRef<FmaArgs>(context);
        float sum = Vector512.IsHardwareAccelerated ? Fma512(a.Iterations)
            : Vector256.IsHardwareAccelerated ? Fma256(a.Iterations)
            : Fma128(a.Iterations);
        if (sum == 42f) a.Sink = sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Fma512(long iterations)
    {
        var m = Vector512.Create(0.999999f);
        var c = Vector512.Create(1e-7f);
        Vector512<float> x0 = Vector512.Create(0.1f), x1 = x0 + c, x2 = x1 + c, x3 = x2 + c, x4 = x3 + c, x5 = x4 + c, x6 = x5 + c, x7 = x6 + c;
        Vector512<float> x8 = x7 + c, x9 = x8 + c, xa = x9 + c, xb = xa + c, xc = xb + c, xd = xc + c, xe = xd + c, xf = xe + c;
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector512.FusedMultiplyAdd(x0, m, c); x1 = Vector512.FusedMultiplyAdd(x1, m, c);
            x2 = Vector512.FusedMultiplyAdd(x2, m, c); x3 = Vector512.FusedMultiplyAdd(x3, m, c);
            x4 = Vector512.FusedMultiplyAdd(x4, m, c); x5 = Vector512.FusedMultiplyAdd(x5, m, c);
            x6 = Vector512.FusedMultiplyAdd(x6, m, c); x7 = Vector512.FusedMultiplyAdd(x7, m, c);
            x8 = Vector512.FusedMultiplyAdd(x8, m, c); x9 = Vector512.FusedMultiplyAdd(x9, m, c);
            xa = Vector512.FusedMultiplyAdd(xa, m, c); xb = Vector512.FusedMultiplyAdd(xb, m, c);
            xc = Vector512.FusedMultiplyAdd(xc, m, c); xd = Vector512.FusedMultiplyAdd(xd, m, c);
            xe = Vector512.FusedMultiplyAdd(xe, m, c); xf = Vector512.FusedMultiplyAdd(xf, m, c);
        }
        return Vector512.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + xa + xb + xc + xd + xe + xf);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(long iterations)
    {
        var m = Vector256.Create(0.999999f);
        var c = Vector256.Create(1e-7f);
        Vector256<float> x0 = Vector256.Create(0.1f), x1 = x0 + c, x2 = x1 + c, x3 = x2 + c, x4 = x3 + c, x5 = x4 + c, x6 = x5 + c, x7 = x6 + c;
        Vector256<float> x8 = x7 + c, x9 = x8 + c, xa = x9 + c, xb = xa + c, xc = xb + c, xd = xc + c, xe = xd + c, xf = xe + c;
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector256.FusedMultiplyAdd(x0, m, c); x1 = Vector256.FusedMultiplyAdd(x1, m, c);
            x2 = Vector256.FusedMultiplyAdd(x2, m, c); x3 = Vector256.FusedMultiplyAdd(x3, m, c);
            x4 = Vector256.FusedMultiplyAdd(x4, m, c); x5 = Vector256.FusedMultiplyAdd(x5, m, c);
            x6 = Vector256.FusedMultiplyAdd(x6, m, c); x7 = Vector256.FusedMultiplyAdd(x7, m, c);
            x8 = Vector256.FusedMultiplyAdd(x8, m, c); x9 = Vector256.FusedMultiplyAdd(x9, m, c);
            xa = Vector256.FusedMultiplyAdd(xa, m, c); xb = Vector256.FusedMultiplyAdd(xb, m, c);
            xc = Vector256.FusedMultiplyAdd(xc, m, c); xd = Vector256.FusedMultiplyAdd(xd, m, c);
            xe = Vector256.FusedMultiplyAdd(xe, m, c); xf = Vector256.FusedMultiplyAdd(xf, m, c);
        }
        return Vector256.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + xa + xb + xc + xd + xe + xf);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Fma128(long iterations)
    {
        var m = Vector128.Create(0.999999f);
        var c = Vector128.Create(1e-7f);
        Vector128<float> x0 = Vector128.Create(0.1f), x1 = x0 + c, x2 = x1 + c, x3 = x2 + c, x4 = x3 + c, x5 = x4 + c, x6 = x5 + c, x7 = x6 + c;
        Vector128<float> x8 = x7 + c, x9 = x8 + c, xa = x9 + c, xb = xa + c, xc = xb + c, xd = xc + c, xe = xd + c, xf = xe + c;
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector128.MultiplyAddEstimate(x0, m, c); x1 = Vector128.MultiplyAddEstimate(x1, m, c);
            x2 = Vector128.MultiplyAddEstimate(x2, m, c); x3 = Vector128.MultiplyAddEstimate(x3, m, c);
            x4 = Vector128.MultiplyAddEstimate(x4, m, c); x5 = Vector128.MultiplyAddEstimate(x5, m, c);
            x6 = Vector128.MultiplyAddEstimate(x6, m, c); x7 = Vector128.MultiplyAddEstimate(x7, m, c);
            x8 = Vector128.MultiplyAddEstimate(x8, m, c); x9 = Vector128.MultiplyAddEstimate(x9, m, c);
            xa = Vector128.MultiplyAddEstimate(xa, m, c); xb = Vector128.MultiplyAddEstimate(xb, m, c);
            xc = Vector128.MultiplyAddEstimate(xc, m, c); xd = Vector128.MultiplyAddEstimate(xd, m, c);
            xe = Vector128.MultiplyAddEstimate(xe, m, c); xf = Vector128.MultiplyAddEstimate(xf, m, c);
        }
        return Vector128.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + xa + xb + xc + xd + xe + xf);
    }

    private struct TriadArgs
    {
        public float* A, B, C;
        public long N;
        public int Parts;
    }

    private static void TriadInit(void* context, int part)
    {
        ref TriadArgs t = ref Unsafe.AsRef<TriadArgs>(context);
        var (start, end) = Range(t.N, t.Parts, part);
        new Span<float>(t.A + start, (int)(end - start)).Fill(0f);
        new Span<float>(t.B + start, (int)(end - start)).Fill(1f);
        new Span<float>(t.C + start, (int)(end - start)).Fill(2f);
    }

    private static void Triad(void* context, int part)
    {
        ref TriadArgs t = ref Unsafe.AsRef<TriadArgs>(context);
        var (start, end) = Range(t.N, t.Parts, part);
        var s = new Vector<float>(0.5f);
        int width = Vector<float>.Count;
        long i = start;
        for (; i <= end - width; i += width)
            Unsafe.WriteUnaligned(t.A + i, Unsafe.ReadUnaligned<Vector<float>>(t.B + i) + s * Unsafe.ReadUnaligned<Vector<float>>(t.C + i));
        for (; i < end; i++) t.A[i] = t.B[i] + 0.5f * t.C[i];
    }

    private static (long Start, long End) Range(long n, int parts, int part) => (n * part / parts, n * (part + 1) / parts);
}
