using System.Diagnostics;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- quant-split [threads]`: where a W4A4 layer's time goes at SD 1.5 shapes — the whole layer with the rank-32
/// branch and without it, and the activation quantization alone with and without the branch's down projection —
/// best of 7 on a private scheduler, so the integer GEMM is the layer without branch minus its quantization.
/// </summary>
public static unsafe class QuantSplitReport
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        using var scheduler = new ThreadScheduler(threads);
        using var use = scheduler.Use();
        Console.WriteLine($"threads {threads}; ms, best of 7: layer (r32), layer (r0), quantize (r32), quantize (r0)");
        for (int pass = 0; pass < 2; pass++)                  // the first pass lets the JIT reach its final tier
        foreach (var (name, m, n, k, conv) in new (string, int, int, int, Conv2dGeometry?)[]
                 {
                     ("linear 4096x320x320", 4096, 320, 320, null),
                     ("linear 4096x2560x320", 4096, 2560, 320, null),
                     ("linear 1024x640x2560", 1024, 640, 2560, null),
                     ("conv3x3 64x64x320->320", 4096, 320, 2880, Conv2dGeometry.Same(1, 64, 64, 320, 320, 3)),
                     ("conv3x3 32x32x640->640", 1024, 640, 5760, Conv2dGeometry.Same(1, 32, 32, 640, 640, 3)),
                     ("conv3x3 16x16x1280->1280", 256, 1280, 11520, Conv2dGeometry.Same(1, 16, 16, 1280, 1280, 3)),
                 })
        {
            long inputs = conv is { } g ? (long)g.InHeight * g.InWidth * g.InChannels : (long)m * k;
            var x = new float[inputs];
            var rng = new Random(3);
            for (long i = 0; i < inputs; i++) x[i] = rng.NextSingle() * 2 - 1;
            var c = new float[(long)m * n];
            var bias = new float[n];
            using var r32 = Random(n, k, 32);
            using var r0 = Random(n, k, 0);
            fixed (float* px = x, pcFixed = c, pbFixed = bias)
            {
                nint cAddress = (nint)pcFixed, biasAddress = (nint)pbFixed;
                var rows = conv is { } geometry ? ActivationRows.Patches(px, geometry) : ActivationRows.Matrix(px, k, k);
                double full32 = Best(() => r32.Forward(rows, m, (float*)biasAddress, (float*)cAddress, n));
                double full0 = Best(() => r0.Forward(rows, m, (float*)biasAddress, (float*)cAddress, n));
                double q32 = Best(() => ActivationQuantizer.Quantize(rows, m, r32, new QuantizedActivations(m, r32), vectorized: true));
                double q0 = Best(() => ActivationQuantizer.Quantize(rows, m, r0, new QuantizedActivations(m, r0), vectorized: true));
                if (pass == 1) Console.WriteLine($"{name,-26} {full32 * 1e3,8:0.00} {full0 * 1e3,8:0.00} {q32 * 1e3,8:0.00} {q0 * 1e3,8:0.00}   " +
                                  $"gemm {(full0 - q0) * 1e3,7:0.00}  down {(q32 - q0) * 1e3,6:0.00}  up {(full32 - full0 - (q32 - q0)) * 1e3,6:0.00}  " +
                                  $"gemm {2.0 * m * n * k / (full0 - q0) / 1e9,6:0} GOP/s");
            }
        }
    }

    private static IntegerMatrix Random(int n, int k, int rank)
    {
        var rng = new Random(7);
        float[] Floats(int count, float lo, float hi) => Enumerable.Range(0, count).Select(_ => lo + rng.NextSingle() * (hi - lo)).ToArray();
        var codes = Enumerable.Range(0, n * k).Select(_ => (sbyte)rng.Next(-8, 8)).ToArray();
        return IntegerMatrix.W4A4(n, k, 64, codes, Floats(n * ((k + 63) / 64), 0.001f, 0.01f), Floats(k, 0.5f, 2f), rank,
            Floats(k * rank, -0.1f, 0.1f), Floats(n * rank, -0.1f, 0.1f));
    }

    private static double Best(Action run)
    {
        run();
        double best = double.MaxValue;
        for (int i = 0; i < 7; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }
}
