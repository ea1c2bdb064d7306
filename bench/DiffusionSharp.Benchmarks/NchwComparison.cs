using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Conv;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- nchw`: the layout decision measured. A 3x3 convolution over NCHW activations written the way NCHW engines do
/// it — y [Cout, P] = W [Cout, Cin*9] · unfold(x) [Cin*9, P] (PyTorch's CPU slow_conv2d, Caffe) — with this engine's
/// GEMM driver and micro-kernel, the unfold written straight into the micro-kernel's packed-B panel layout in one
/// parallel pass (32 consecutive output pixels per panel row: a shifted contiguous copy of an input row), against the
/// engine's NHWC implicit GEMM on the same shapes; one thread, CPU time. Bench-only: the library stays NHWC.
/// Each shape is first checked against the NHWC result.
/// </summary>
public static unsafe class NchwComparison
{
    public static void Run()
    {
        Console.WriteLine($"ISA {KernelSettings.BestIsa}, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}; one thread, CPU time, best of 3+");
        Console.WriteLine($"{"3x3 conv, batch 1",-22} {"NHWC implicit GEMM",19} {"NCHW unfold+GEMM",17} {"(of which unfold)",18} {"NCHW / NHWC",12}");
        using var scheduler = new ThreadScheduler(1);
        using var scope = scheduler.Use();
        foreach (var (size, cin, cout) in new[] { (64, 320, 320), (32, 640, 640), (16, 1280, 1280), (8, 1280, 1280), (64, 4, 320), (128, 512, 512), (256, 256, 256) })
            Compare(size, cin, cout);
    }

    private static void Compare(int size, int cin, int cout)
    {
        var g = Conv2dGeometry.Same(1, size, size, cin, cout, 3);
        int p = size * size, k = cin * 9, panels = (p + 31) / 32;
        var rng = new Random(1);
        float[] torchWeight = Enumerable.Range(0, cout * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(); // [Cout, Cin, 3, 3]
        float[] nchw = Enumerable.Range(0, cin * p).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();       // [Cin, H, W]
        var nhwc = new float[p * cin];
        for (int c = 0; c < cin; c++) for (int i = 0; i < p; i++) nhwc[i * cin + c] = nchw[c * p + i];
        using var weights = new ConvolutionWeights(torchWeight, cout, cin, 3, 3);
        float* unfolded = (float*)NativeMemory.AlignedAlloc((nuint)panels * 32 * (nuint)k * sizeof(float), 64);
        var yNhwc = new float[p * cout];
        var yNchw = new float[cout * p];
        try
        {
            fixed (float* w = torchWeight, xc = nchw, xh = nhwc, yh = yNhwc, yc = yNchw)
            {
                float* cw = w, cxc = xc, cxh = xh, cyh = yh, cyc = yc, cu = unfolded;
                var args = new UnfoldArgs { X = cxc, Destination = cu, Channels = cin, Size = size, K = k };
                UnfoldArgs* pa = &args;
                void Unfold() => ThreadScheduler.Current.For(panels, &UnfoldPanel, pa);
                void Nchw()
                {
                    Unfold();
                    var problem = new GemmKernel.Problem<GemmKernel.RowMajorRows>(new GemmKernel.RowMajorRows(cw, k), cout, p, k, cu, 1f, null, cyc, p, null, 0);
                    GemmKernel.Run(ref problem, KernelSettings.BestIsa);
                }
                void Nhwc() => Conv2dKernel.Forward(cxh, g, weights, null, cyh, null, KernelSettings.BestIsa);
                Nchw();
                Nhwc();
                for (int o = 0; o < cout; o++)
                for (int i = 0; i < p; i++)
                    if (Math.Abs(yNchw[o * p + i] - yNhwc[i * cout + o]) > 1e-3 * Math.Sqrt(k))
                        throw new InvalidOperationException($"NCHW and NHWC disagree at {size}x{size}x{cin}->{cout}, channel {o}, pixel {i}.");
                double tNhwc = Best(Nhwc), tNchw = Best(Nchw), tUnfold = Best(Unfold);
                Console.WriteLine($"{size}x{size}x{cin}->{cout,-10} {tNhwc * 1e3,16:F2} ms {tNchw * 1e3,14:F2} ms {tUnfold * 1e3,15:F2} ms {tNchw / tNhwc,12:F2}");
            }
        }
        finally
        {
            NativeMemory.AlignedFree(unfolded);
        }
    }

    private struct UnfoldArgs
    {
        public float* X, Destination;
        public int Channels, Size, K;
    }

    /// <summary>Panel j of unfold(x): rows k = (ci, ky, kx), 32 output pixels each, zeros outside the image and past P.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UnfoldPanel(void* context, int panel)
    {
        ref UnfoldArgs a = ref Unsafe.AsRef<UnfoldArgs>(context);
        int s = a.Size, p = s * s;
        float* dst = a.Destination + (long)panel * 32 * a.K;
        int p0 = panel * 32;
        for (int ci = 0; ci < a.Channels; ci++)
        {
            float* plane = a.X + (long)ci * p;
            for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++, dst += 32)
            {
                int lane = 0;
                while (lane < 32)
                {
                    int pixel = p0 + lane;
                    if (pixel >= p)
                    {
                        new Span<float>(dst + lane, 32 - lane).Clear();
                        break;
                    }
                    int oy = pixel / s, ox = pixel - oy * s;
                    int run = Math.Min(32 - lane, s - ox), iy = oy + ky - 1;
                    if ((uint)iy >= (uint)s)
                    {
                        new Span<float>(dst + lane, run).Clear();
                        lane += run;
                        continue;
                    }
                    // One output row's stretch: input row iy from column ox + kx - 1, a zero where it leaves the image.
                    int from = ox + kx - 1, to = lane, count = run;
                    if (from < 0) { dst[to++] = 0f; from++; count--; }
                    bool pastEnd = from + count > s;
                    if (pastEnd) count--;
                    Buffer.MemoryCopy(plane + (long)iy * s + from, dst + to, count * sizeof(float), count * sizeof(float));
                    if (pastEnd) dst[to + count] = 0f;
                    lane += run;
                }
            }
        }
    }

    private static double Best(Action run)
    {
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < 20 && (i < 3 || total.Elapsed.TotalSeconds < 0.5); i++)
        {
            var t0 = Process.GetCurrentProcess().TotalProcessorTime;
            run();
            best = Math.Min(best, (Process.GetCurrentProcess().TotalProcessorTime - t0).TotalSeconds);
        }
        return best;
    }
}
