using System.Text.Json;
using DiffusionSharp.Cli;
using DiffusionSharp.Cli.Bench;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Cli;

/// <summary>
/// <c>diffusion bench</c> on the tiny fixture models: exit codes, and JSON that parses with every documented field
/// (docs/BENCHMARKS.md) present, finite and positive, and consistent with itself and with the model's FLOP count.
/// Timings are never asserted: the machine is shared.
/// </summary>
public class BenchCommandTests
{
    /// <summary>The machine fields every benchmark's JSON carries.</summary>
    private static readonly string[] MachineNumbers = ["processor_count", "threads", "peak_gflops", "peak_gflops_1t", "bandwidth_gbps", "bandwidth_gbps_1t"];

    private static readonly string[] ModelNumbers =
    [
        "width", "height", "steps", "cfg_scale", "unet_batch", "repeats", "load_seconds", "text_encoder_seconds", "unet_step_seconds",
        "unet_flops_per_step", "unet_gflops_per_step", "unet_peak_fraction", "loop_seconds", "loop_step_seconds", "vae_decode_seconds",
        "vae_decode_flops", "image_seconds", "loaded_rss_bytes", "peak_rss_bytes",
    ];

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, 2, 2)]
    [InlineData(TinyModelFixtures.Mobile, 1, 1)]
    public void Model_benchmark_prints_json_with_the_documented_fields(string fixture, int threads, int expectedBatch)
    {
        string folder = TinyModelFixtures.ModelFolder(fixture);
        var (code, stdout, stderr) = Run("bench", "-m", folder, "--steps", "2", "-r", "2", "-t", threads.ToString(), "--json");

        Assert.True(code == ExitCodes.Success, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var json = doc.RootElement;
        Assert.Equal("model", json.GetProperty("benchmark").GetString());
        AssertMachine(json, threads);
        foreach (string name in ModelNumbers) AssertPositive(json, name);
        Assert.True(json.GetProperty("step_allocated_bytes").GetInt64() >= 0);
        Assert.Equal(fixture, json.GetProperty("model").GetString());
        Assert.Equal(Path.GetFullPath(folder), json.GetProperty("model_path").GetString());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("sampler").GetString()));
        Assert.Equal(2, json.GetProperty("steps").GetInt32());
        Assert.True(json.GetProperty("peak_rss_bytes").GetInt64() >= json.GetProperty("loaded_rss_bytes").GetInt64());
        Assert.Equal(expectedBatch, json.GetProperty("unet_batch").GetInt32());
        Assert.Equal("fp32", json.GetProperty("precision").GetString());

        // The FLOPs are the model's own count at the benchmarked latent size, times the step's batch.
        using var model = ModelLoader.Load(folder);
        Assert.Equal(model.Family.Family.ToString(), json.GetProperty("family").GetString());
        int width = json.GetProperty("width").GetInt32(), height = json.GetProperty("height").GetInt32();
        Assert.Equal((model.Defaults.Width, model.Defaults.Height), (width, height));
        int lh = height / model.LatentScale, lw = width / model.LatentScale;
        Assert.Equal(expectedBatch * model.Unet.FlopsPerForward(lh, lw, 77), json.GetProperty("unet_flops_per_step").GetInt64());
        Assert.Equal(model.Vae.DecodeFlops(lh, lw), json.GetProperty("vae_decode_flops").GetInt64());

        // Derived figures agree with the ones they come from (each printed to 5 significant digits).
        double stepSeconds = json.GetProperty("unet_step_seconds").GetDouble();
        double gflops = json.GetProperty("unet_gflops_per_step").GetDouble();
        AssertRelative(json.GetProperty("unet_flops_per_step").GetInt64() / stepSeconds / 1e9, gflops);
        AssertRelative(gflops / json.GetProperty("peak_gflops").GetDouble(), json.GetProperty("unet_peak_fraction").GetDouble());
        AssertRelative(json.GetProperty("loop_seconds").GetDouble() / 2, json.GetProperty("loop_step_seconds").GetDouble());
    }

    [Fact]
    public void Profile_accounts_for_the_step_s_multiply_accumulates_by_kind_and_shape()
    {
        string folder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15);
        var (code, stdout, stderr) = Run("bench", "-m", folder, "--steps", "1", "-r", "2", "-t", "1", "--profile", "--json");

        Assert.True(code == ExitCodes.Success, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var json = doc.RootElement;
        var ops = json.GetProperty("profile").EnumerateArray().ToArray();
        var kinds = ops.Select(op => op.GetProperty("kind").GetString()!).ToHashSet();
        foreach (string kind in new[] { "linear", "conv3x3", "attention", "groupnorm+silu", "layernorm" }) Assert.Contains(kind, kinds);
        foreach (var op in ops)
        {
            Assert.True(op.GetProperty("calls").GetInt32() > 0);
            Assert.True(op.GetProperty("m").GetInt32() > 0 && op.GetProperty("n").GetInt32() > 0);
            Assert.True(op.GetProperty("seconds").GetDouble() >= 0);
        }
        // Every multiply-add of the model's FLOP count is in exactly one profiled operation (per step, batch 2).
        long macs = ops.Sum(op => op.GetProperty("multiply_accumulates").GetInt64());
        Assert.Equal(json.GetProperty("unet_flops_per_step").GetInt64(), 2 * macs);
        double profiled = ops.Sum(op => op.GetProperty("seconds").GetDouble());
        Assert.True(profiled <= json.GetProperty("profile_step_seconds").GetDouble() * 1.01 + 1e-4);

        (code, stdout, stderr) = Run("bench", "-m", folder, "--steps", "1", "-r", "1", "-t", "1", "--profile");
        Assert.True(code == ExitCodes.Success, stderr);
        Assert.Contains("profile of 1 more UNet step, per step:", stdout);
        Assert.Contains("costliest shapes (M x N x K)", stdout);
    }

    [Fact]
    public void Model_benchmark_reports_the_weight_precision()
    {
        string folder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);
        var (code, stdout, stderr) = Run("bench", "-m", folder, "--steps", "1", "-r", "1", "-t", "1", "--precision", "bf16", "--json");

        Assert.True(code == ExitCodes.Success, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("bf16", doc.RootElement.GetProperty("precision").GetString());
    }

    [Fact]
    public void Ops_benchmark_with_a_16_bit_precision_adds_the_gemm_shapes_with_16_bit_weights()
    {
        var (code, stdout, stderr) = Run("bench", "ops", "-r", "1", "-t", "1", "--precision", "fp16", "--json");

        Assert.True(code == ExitCodes.Success, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var names = doc.RootElement.GetProperty("ops").EnumerateArray().Select(op => op.GetProperty("name").GetString()!).ToArray();
        Assert.Equal<string>(
            ["fp16 linear 4096x320x320", "fp16 linear 4096x1280x320", "fp16 linear 1024x2560x640", "fp16 linear 77x320x768",
             "fp16 conv3x3 64x64x320->320", "fp16 conv3x3 32x32x640->640"],
            names[^6..]);
        Assert.Equal(KernelOp.Sd15.Count + 6, names.Length);
    }

    [Fact]
    public void Model_benchmark_table_names_every_stage_at_the_requested_size()
    {
        string folder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15);
        var (code, stdout, stderr) = Run("bench", "-m", folder, "-W", "96", "-H", "32", "--steps", "1", "-r", "1", "-t", "1");

        Assert.True(code == ExitCodes.Success, stderr);
        Assert.Contains("96x32, 1 step of", stdout);
        foreach (string stage in new[] { "load", "text encoder (batch 2)", "UNet step", "denoising loop (1)", "VAE decode", "resident after load", "peak resident memory", "managed bytes per step" })
            Assert.Contains(Environment.NewLine + stage, stdout);
        Assert.Contains("loading ", stderr);
        Assert.Contains("measuring the machine's ceilings", stderr);
    }

    [Fact]
    public void Peak_benchmark_prints_the_ceilings()
    {
        var (code, stdout, stderr) = Run("bench", "peak", "--json");

        Assert.True(code == ExitCodes.Success, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("peak", doc.RootElement.GetProperty("benchmark").GetString());
        AssertMachine(doc.RootElement, Environment.ProcessorCount);
    }

    [Fact]
    public void Ops_benchmark_times_the_sd15_kernels()
    {
        var (code, stdout, stderr) = Run("bench", "ops", "-r", "1", "-t", "1", "--json");

        Assert.True(code == ExitCodes.Success, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var json = doc.RootElement;
        Assert.Equal("ops", json.GetProperty("benchmark").GetString());
        AssertMachine(json, 1);
        var names = json.GetProperty("ops").EnumerateArray().Select(op => op.GetProperty("name").GetString()!).ToArray();
        Assert.Equal<string>(
            ["linear 4096x320x320", "linear 4096x1280x320", "linear 1024x2560x640", "linear 77x320x768",
             "conv3x3 64x64x320->320", "conv3x3 64x64x320->320 winograd", "conv3x3 32x32x640->640", "conv3x3 32x32x640->640 winograd",
             "conv3x3 16x16x1280->1280", "conv3x3 16x16x1280->1280 winograd", "conv3x3 64x64x512->512", "conv3x3 64x64x512->512 winograd",
             "conv3x3 128x128x512->512", "conv3x3 128x128x512->512 winograd", "conv3x3 256x256x256->256", "conv3x3 256x256x256->256 winograd",
             "conv3x3 512x512x128->128", "conv3x3 512x512x128->128 winograd", "self-attention 4096 tokens 8x40", "groupnorm+silu 4096x320"],
            names);
        foreach (var op in json.GetProperty("ops").EnumerateArray())
        {
            AssertPositive(op, "seconds");
            AssertPositive(op, "peak_fraction");
            bool memoryBound = op.GetProperty("flops").ValueKind == JsonValueKind.Null;
            string amount = memoryBound ? "bytes" : "flops", rate = memoryBound ? "gbps" : "gflops";
            Assert.Equal(JsonValueKind.Null, op.GetProperty(memoryBound ? "gflops" : "gbps").ValueKind);
            AssertPositive(op, amount);
            AssertRelative(op.GetProperty(amount).GetDouble() / op.GetProperty("seconds").GetDouble() / 1e9, op.GetProperty(rate).GetDouble());
            double peak = json.GetProperty(memoryBound ? "bandwidth_gbps_1t" : "peak_gflops_1t").GetDouble();
            AssertRelative(op.GetProperty(rate).GetDouble() / peak, op.GetProperty("peak_fraction").GetDouble());
        }
        // A conv 3x3 at 64x64, 320 -> 320 channels is 2 x 4096 pixels x 320 x (9 x 320) FLOPs.
        Assert.Equal(2.0 * 4096 * 320 * 9 * 320, json.GetProperty("ops")[4].GetProperty("flops").GetDouble());
    }

    [Theory]
    [InlineData("bench", "-t", "-1")]
    [InlineData("bench", "-t", "two")]
    [InlineData("bench", "-t", "1025")]
    [InlineData("bench", "--steps", "0")]
    [InlineData("bench", "--steps", "1001")]
    [InlineData("bench", "-r", "0")]
    [InlineData("bench", "-W", "0")]
    [InlineData("bench", "-W", "9000")]
    [InlineData("bench", "-H", "-8")]
    [InlineData("bench", "--model-config")]
    [InlineData("bench", "--bogus")]
    [InlineData("bench", "--steps", "two")]
    [InlineData("bench", "--precision", "fp8")]
    [InlineData("bench", "--precision")]
    [InlineData("bench", "ops", "--precision", "int4")]
    [InlineData("bench", "ops", "-r", "0")]
    [InlineData("bench", "ops", "-r", "x")]
    [InlineData("bench", "ops", "-m", "model")]
    [InlineData("bench", "peak", "-t", "-2")]
    [InlineData("bench", "peak", "extra")]
    public void Bad_options_exit_with_2_and_print_nothing_on_stdout(params string[] args)
    {
        var (code, stdout, stderr) = Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("error: ", stderr);
    }

    [Fact]
    public void A_size_the_vae_cannot_make_exits_with_2_after_loading()
    {
        var (code, stdout, stderr) = Run("bench", "-m", TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15), "-W", "60", "-r", "1");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", stdout);
        Assert.Contains("error: Width 60 must be a multiple of 8", stderr);
    }

    [Fact]
    public void A_missing_model_exits_with_3()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-model-{Guid.NewGuid():N}");
        var (code, stdout, stderr) = Run("bench", "-m", missing);

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal("", stdout);
        Assert.Contains($"error: Model not found: '{missing}'", stderr);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static void AssertMachine(JsonElement json, int threads)
    {
        foreach (string name in MachineNumbers) AssertPositive(json, name);
        Assert.Equal(threads, json.GetProperty("threads").GetInt32());
        Assert.Equal(Environment.ProcessorCount, json.GetProperty("processor_count").GetInt32());
        Assert.Contains(json.GetProperty("isa").GetString(), Enum.GetNames<DiffusionSharp.Kernels.KernelIsa>());
        Assert.Equal(Environment.Version.ToString(), json.GetProperty("dotnet").GetString());
        Assert.False(string.IsNullOrWhiteSpace(json.GetProperty("cpu").GetString()));
        Assert.Equal(JsonValueKind.False, json.GetProperty("reference_kernels").ValueKind);
        var load = json.GetProperty("load_average");
        Assert.True(load.ValueKind == JsonValueKind.Null || load.GetDouble() >= 0);
    }

    private static void AssertPositive(JsonElement json, string name)
    {
        Assert.True(json.TryGetProperty(name, out var value), $"missing field '{name}'");
        Assert.Equal(JsonValueKind.Number, value.ValueKind);
        double v = value.GetDouble();
        Assert.True(double.IsFinite(v) && v > 0, $"'{name}' is {v}, expected a positive number");
    }

    /// <summary>Figures are printed to 5 significant digits: a derived one matches its inputs to about 1e-4.</summary>
    private static void AssertRelative(double expected, double actual)
        => Assert.True(Math.Abs(actual - expected) <= 2e-4 * Math.Abs(expected), $"expected {expected}, got {actual}");
}
