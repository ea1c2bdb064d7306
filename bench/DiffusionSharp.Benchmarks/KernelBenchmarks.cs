using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using DiffusionSharp.Kernels;
using DiffusionSharp.Kernels.Attention;

namespace DiffusionSharp.Benchmarks;

/// <summary>A benchmark parameter: a named kernel case and the work it does (flops, or bytes for memory-bound ops).</summary>
public sealed class Shape(string name, double flops, double bytes, Func<KernelCase> make)
{
    public double Flops { get; } = flops;
    public double Bytes { get; } = bytes;
    public KernelCase Make() => make();
    public override string ToString() => name;

    public static Shape Of(Func<KernelCase> make)
    {
        using var probe = make();
        return new Shape(probe.Name, probe.Flops, probe.Bytes, make);
    }
}

/// <summary>
/// Runs <see cref="Fast"/> (and, in the small-shape suites, <c>Reference</c>) for each <see cref="Shape"/> of the derived
/// suite; the columns add GFLOP/s or GB/s and the fraction of this machine's ceiling measured in the host process.
/// </summary>
[Config(typeof(KernelConfig))]
public abstract class KernelBenchmark
{
    private KernelCase? _case;

    [ParamsSource(nameof(Shapes))]
    public Shape Shape { get; set; } = null!;

    /// <summary>The parameter values (one public member, so BenchmarkDotNet finds exactly one source).</summary>
    public IEnumerable<Shape> Shapes() => CreateShapes();

    protected abstract IEnumerable<Shape> CreateShapes();

    [GlobalSetup]
    public void Setup() => _case = Shape.Make();

    [GlobalCleanup]
    public void Cleanup() => _case?.Dispose();

    [Benchmark]
    public void Fast() => _case!.Run();

    protected void RunReference() => _case!.RunReference();
}

/// <summary>The fast GEMMs at SD 1.5 shapes (the brief's four, the FFN pair, GEMV).</summary>
public class GemmBenchmarks : KernelBenchmark
{
    protected override IEnumerable<Shape> CreateShapes() =>
    [
        Shape.Of(() => KernelCases.Linear(4096, 320, 320)),
        Shape.Of(() => KernelCases.Linear(4096, 1280, 320)),
        Shape.Of(() => KernelCases.Linear(1024, 2560, 640)),
        Shape.Of(() => KernelCases.Linear(1024, 640, 2560)),
        Shape.Of(() => KernelCases.Linear(77, 320, 768)),
        Shape.Of(() => KernelCases.Linear(1, 1280, 1280)),
        Shape.Of(() => KernelCases.MultiplyTransposed(4096, 4096, 40)),
    ];
}

/// <summary>3x3 convolutions of the SD 1.5 UNet at 512x512 (and the VAE-sized first conv), stride 1 and 2.</summary>
public class ConvBenchmarks : KernelBenchmark
{
    protected override IEnumerable<Shape> CreateShapes() =>
    [
        Shape.Of(() => KernelCases.Conv3x3(64, 64, 320, 320)),
        Shape.Of(() => KernelCases.Conv3x3(64, 64, 320, 320, winograd: true)),
        Shape.Of(() => KernelCases.Conv3x3(32, 32, 640, 640)),
        Shape.Of(() => KernelCases.Conv3x3(32, 32, 640, 640, winograd: true)),
        Shape.Of(() => KernelCases.Conv3x3(16, 16, 1280, 1280)),
        Shape.Of(() => KernelCases.Conv3x3(16, 16, 1280, 1280, winograd: true)),
        Shape.Of(() => KernelCases.Conv3x3(128, 128, 512, 512)),
        Shape.Of(() => KernelCases.Conv3x3(128, 128, 512, 512, winograd: true)),
        Shape.Of(() => KernelCases.Conv3x3(64, 64, 320, 320, stride: 2)),
        Shape.Of(() => KernelCases.Conv3x3(64, 64, 4, 320)),
    ];
}

/// <summary>Self- and cross-attention at SD 1.5's 64x64 and 32x32 levels, and MobileDiffusion-style ReLU attention.</summary>
public class AttentionBenchmarks : KernelBenchmark
{
    protected override IEnumerable<Shape> CreateShapes() =>
    [
        Shape.Of(() => KernelCases.Attention(4096, 4096, 8, 40)),
        Shape.Of(() => KernelCases.Attention(4096, 77, 8, 40)),
        Shape.Of(() => KernelCases.Attention(1024, 1024, 8, 80)),
        Shape.Of(() => KernelCases.Attention(1024, 1024, 8, 80, AttentionActivation.Relu)),
    ];
}

/// <summary>Memory-bound ops at SD 1.5 UNet and VAE sizes (GB/s against the triad bandwidth).</summary>
public class MemoryBoundBenchmarks : KernelBenchmark
{
    protected override IEnumerable<Shape> CreateShapes() =>
    [
        Shape.Of(() => KernelCases.GroupNorm(4096, 320, silu: true)),
        Shape.Of(() => KernelCases.GroupNorm(512 * 512, 128, silu: true)),
        Shape.Of(() => KernelCases.LayerNorm(4096, 320)),
        Shape.Of(() => KernelCases.Geglu(4096, 1280)),
        Shape.Of(() => KernelCases.Silu(512L * 512 * 128)),
    ];
}

/// <summary>Each kernel against its scalar reference twin at small shapes (the reference is far too slow at SD sizes).</summary>
public class ReferenceBenchmarks : KernelBenchmark
{
    protected override IEnumerable<Shape> CreateShapes() =>
    [
        Shape.Of(() => KernelCases.Linear(64, 320, 320)),
        Shape.Of(() => KernelCases.Conv3x3(8, 8, 64, 64)),
        Shape.Of(() => KernelCases.Conv3x3(8, 8, 64, 64, winograd: true)),
        Shape.Of(() => KernelCases.Attention(256, 256, 2, 40)),
        Shape.Of(() => KernelCases.GroupNorm(1024, 320, silu: true)),
        Shape.Of(() => KernelCases.LayerNorm(256, 320)),
    ];

    [Benchmark(Baseline = true)]
    public void Reference() => RunReference();
}

/// <summary>Adds the throughput and %-of-peak columns.</summary>
public sealed class KernelConfig : ManualConfig
{
    public KernelConfig()
    {
        AddColumn(new ThroughputColumn(relativeToPeak: false), new ThroughputColumn(relativeToPeak: true));
        SummaryStyle = SummaryStyle.Default.WithMaxParameterColumnWidth(40);
    }
}

/// <summary>
/// GFLOP/s (or GB/s for memory-bound shapes) from the mean time, optionally as a fraction of the FMA peak (or triad
/// bandwidth) that <see cref="MachinePeak"/> measures in the host process once, with all processors.
/// </summary>
public sealed class ThroughputColumn(bool relativeToPeak) : IColumn
{
    private static readonly Lazy<(double Gflops, double GBps)> s_peak = new(() =>
        (MachinePeak.FmaGflops(Environment.ProcessorCount, TimeSpan.FromMilliseconds(300)), MachinePeak.TriadGBps(Environment.ProcessorCount, 64)));

    public string Id => relativeToPeak ? "PeakFraction" : "Throughput";
    public string ColumnName => relativeToPeak ? "% of peak" : "GFLOP/s or GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => relativeToPeak ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => relativeToPeak
        ? "Throughput over the machine's FMA peak (flop shapes) or triad bandwidth (byte shapes), all processors, measured by the host"
        : "Billions of flops (an FMA = 2) or of bytes moved per second, from the mean";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var shape = benchmarkCase.Parameters.Items.Select(p => p.Value).OfType<Shape>().FirstOrDefault();
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (shape == null || stats == null) return "-";
        bool flops = shape.Flops > 0;
        double perSecond = (flops ? shape.Flops : shape.Bytes) / (stats.Mean * 1e-9) / 1e9;
        if (!relativeToPeak) return perSecond.ToString(flops ? "F1" : "F2", System.Globalization.CultureInfo.InvariantCulture) + (flops ? " GF" : " GB/s");
        double peak = flops ? s_peak.Value.Gflops : s_peak.Value.GBps;
        return (perSecond / peak).ToString("P0", System.Globalization.CultureInfo.InvariantCulture);
    }
}
