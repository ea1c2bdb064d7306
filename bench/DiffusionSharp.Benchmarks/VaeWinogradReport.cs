using System.Diagnostics;
using DiffusionSharp.Kernels;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- vae-winograd MODEL [latent sizes...]`: the model's VAE decode with every 3x3 convolution as implicit GEMM and
/// with Winograd where <c>Conv2dKernel.PrefersWinograd</c> picks it, in the same process, alternating, each after an
/// untimed warm-up (which also transforms the Winograd filters). Reports wall time and the process's CPU time (all
/// threads): on a shared machine the CPU-time ratio is the figure to compare.
/// </summary>
public static class VaeWinogradReport
{
    public static void Run(string[] args)
    {
        string path = args.Length > 1 ? args[1] : throw new ArgumentException("usage: vae-winograd MODEL [latent size ...]");
        int[] sizes = args.Length > 2 ? args[2..].Select(int.Parse).ToArray() : [32, 64];
        using var model = ModelLoader.Load(path);
        var process = Process.GetCurrentProcess();
        Console.WriteLine($"load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}, {Environment.ProcessorCount} processors");
        foreach (int size in sizes)
        {
            using var latents = new Tensor(1, size, size, model.Vae.Config.LatentChannels); // [1, h, w, latent]
            var random = new Random(1);
            foreach (ref float v in latents.Span) v = (float)(random.NextDouble() * 2 - 1);
            foreach (bool winograd in new[] { false, true })
            {
                KernelSettings.AllowWinograd = winograd;
                using (model.Vae.Decode(latents)) { }
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                var wall = Stopwatch.StartNew();
                using (model.Vae.Decode(latents)) { }
                wall.Stop();
                process.Refresh();
                double cpu = (process.TotalProcessorTime - cpu0).TotalSeconds;
                Console.WriteLine($"VAE decode {size * 8}x{size * 8} {(winograd ? "Winograd" : "implicit GEMM"),-14} wall {wall.Elapsed.TotalSeconds,7:F2} s  CPU {cpu,7:F2} s  (load {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
            }
        }
    }
}
