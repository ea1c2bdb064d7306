using System.Text.Json;
using DiffusionSharp.Cli;
using DiffusionSharp.Kernels;
using DiffusionSharp.Tests.Models;
using DiffusionSharp.Tests.Models.Unet;

namespace DiffusionSharp.Tests.Cli;

/// <summary>
/// <c>diffusion bench fusions</c> on the tiny fixture model: every variant (all fused, each fusion off, all off) is
/// timed and named by the fusions it lacks, and the process-wide switch is restored afterwards. It switches
/// <see cref="Fusions.Enabled"/>, so it runs with the other switching tests, alone. Timings are never asserted.
/// </summary>
[Collection(FusionSwitchCollection.Name)]
public class BenchFusionsCommandTests
{
    [Fact]
    public void Fusions_benchmark_prints_every_variant_as_json_and_restores_the_switch()
    {
        var before = Fusions.Enabled;
        var result = CliRunner.Run("bench", "fusions", "-m", TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15), "-r", "2", "-t", "2", "--no-ops", "--json");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        Assert.Equal(before, Fusions.Enabled);
        using var doc = JsonDocument.Parse(result.Output);
        var json = doc.RootElement;
        Assert.Equal("fusions", json.GetProperty("benchmark").GetString());
        Assert.Equal(2, json.GetProperty("unet_batch").GetInt32());
        Assert.Equal(2, json.GetProperty("repeats").GetInt32());
        Assert.True(json.GetProperty("step_allocated_bytes").GetInt64() >= 0);
        Assert.Equal(0, json.GetProperty("ops").GetArrayLength());

        var variants = json.GetProperty("variants").EnumerateArray().ToArray();
        string[] names = Fusions.Each.Select(Fusions.Name).ToArray();
        Assert.Equal(names.Length + 2, variants.Length);
        var expectedUnfused = new[] { Array.Empty<string>() }.Concat(names.Select(n => new[] { n })).Append(names).ToArray();
        for (int i = 0; i < variants.Length; i++)
        {
            var v = variants[i];
            Assert.Equal(expectedUnfused[i], v.GetProperty("unfused").EnumerateArray().Select(e => e.GetString()!).ToArray());
            Assert.Equal(JsonValueKind.Null, v.GetProperty("skipped").ValueKind);
            Assert.Equal(2, v.GetProperty("runs_seconds").GetArrayLength());
            double seconds = v.GetProperty("unet_step_seconds").GetDouble();
            Assert.True(seconds > 0, $"variant {i}: {seconds}");
            double ratio = seconds / variants[0].GetProperty("unet_step_seconds").GetDouble();
            Assert.True(Math.Abs(ratio - v.GetProperty("gain").GetDouble()) <= 1e-3 * ratio, $"variant {i}: gain {v.GetProperty("gain")} vs {ratio}"); // 5 significant digits each
        }
        Assert.Equal("all fused", variants[0].GetProperty("name").GetString());
        Assert.Equal(1.0, variants[0].GetProperty("gain").GetDouble());
    }

    [Fact]
    public void Fusions_benchmark_table_names_each_fusion()
    {
        var result = CliRunner.Run("bench", "fusions", "-m", TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile), "-r", "1", "-t", "1", "--no-ops");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
        foreach (string name in Fusions.Each.Select(Fusions.Name))
            Assert.Contains(Environment.NewLine + name + " off", result.Output);
        Assert.Contains(Environment.NewLine + "all fused", result.Output);
        Assert.Contains(Environment.NewLine + "all unfused", result.Output);
    }

    [Fact]
    public void Fusions_benchmark_rejects_a_bad_repeat_count()
    {
        var result = CliRunner.Run("bench", "fusions", "-r", "0");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--repeats", result.Error);
    }
}
