using System.Diagnostics;
using System.Runtime.InteropServices;
using DiffusionSharp.Kernels;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- first-touch [MiB]`: what a fresh page costs on this machine — the time to touch every 4 KiB page of a new
/// buffer once (plain <see cref="NativeMemory.AlignedAlloc(nuint, nuint)"/>, then <see cref="NativeBuffers.Allocate"/>,
/// which asks Linux for transparent huge pages), against clearing the same buffer once it is resident. On a virtual
/// machine the first touch can cost far more than the arithmetic of a load or a step: the reason weights and
/// activations are allocated once and reused (docs/ARCHITECTURE.md).
/// </summary>
public static unsafe class FirstTouchReport
{
    public static void Run(string[] args)
    {
        long bytes = (args.Length > 1 ? long.Parse(args[1]) : 1024) << 20;
        Console.WriteLine($"{bytes >> 20} MiB buffers, each new: first touch of every 4 KiB page, then a clear of the resident buffer");
        for (int pass = 0; pass < 2; pass++)
        {
            Measure("plain (4 KiB pages)", bytes, b => (nint)NativeMemory.AlignedAlloc((nuint)b, 64));
            Measure("NativeBuffers (huge pages where granted)", bytes, b => (nint)NativeBuffers.Allocate(b));
        }
    }

    private static void Measure(string name, long bytes, Func<long, nint> allocate)
    {
        byte* p = (byte*)allocate(bytes);
        try
        {
            long start = Stopwatch.GetTimestamp();
            for (long i = 0; i < bytes; i += 4096) p[i] = 1;
            double touch = Stopwatch.GetElapsedTime(start).TotalSeconds;
            start = Stopwatch.GetTimestamp();
            NativeMemory.Clear(p, (nuint)bytes);
            double clear = Stopwatch.GetElapsedTime(start).TotalSeconds;
            string huge = File.Exists("/proc/self/smaps_rollup")
                ? File.ReadAllLines("/proc/self/smaps_rollup").FirstOrDefault(l => l.StartsWith("AnonHugePages"))?.Split(':')[1].Trim() ?? "?"
                : "n/a";
            Console.WriteLine($"{name,-42} first touch {touch:0.000} s = {touch / (bytes / 4096.0) * 1e6:0.00} µs per 4 KiB; " +
                              $"clear when resident {clear:0.000} s; process AnonHugePages {huge}");
        }
        finally
        {
            NativeMemory.AlignedFree(p);
        }
    }
}
