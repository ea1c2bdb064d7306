using DiffusionSharp.Cli;
using DiffusionSharp.Quantization;
using DiffusionSharp.Tests.Cli;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Quantization;

/// <summary><c>diffusion quantize</c> and <c>--report</c> on the tiny model: files, exit codes, one-line errors. They set the
/// process-wide thread count (<c>-t</c>), so they run with the other generate tests, alone.</summary>
[Collection(CliGenerateCollection.Name)]
public sealed class QuantizeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("quantcli").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Quantize_then_report_writes_file_images_grid_and_table()
    {
        string model = TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);
        string calib = Path.Combine(_dir, "calib.txt");
        File.WriteAllText(calib, "a red apple\na blue cat\n");
        string file = Path.Combine(_dir, "q.safetensors");
        var q = CliRunner.Run("quantize", "-m", model, "--method", "w4a4-naive", "--group", "32", "--calib", calib, "--calib-steps", "1", "-o", file, "-t", "1");
        Assert.True(q.ExitCode == ExitCodes.Success, q.Error);
        Assert.Equal(file, q.OutputLines.Single());
        Assert.Contains(q.ErrorLines, l => l.StartsWith("quantized [", StringComparison.Ordinal));
        Assert.True(QuantizedUnetFile.IsQuantizedFile(file));

        string prompts = Path.Combine(_dir, "prompts.json");
        File.WriteAllText(prompts, """[{"prompt": "a red apple", "seed": 3, "file": "apple.png"}, {"prompt": "a cat", "seed": 4, "file": "cat.png"}]""");
        string report = Path.Combine(_dir, "report");
        var r = CliRunner.Run("quantize", "--report", "-m", model, "--prompts", prompts, "--variant", file, "-o", report, "-t", "1");
        Assert.True(r.ExitCode == ExitCodes.Success, r.Error);
        Assert.Contains("| q |", r.Output);
        foreach (string f in new[] { "fp32/apple.png", "fp32/cat.png", "q/apple.png", "q/cat.png", "grid.png", "report.md", "report.json" })
            Assert.True(File.Exists(Path.Combine(report, f)), f);
    }

    [Theory]
    [InlineData("--method", "w3a3", "--method must be one of")]
    [InlineData("--group", "8", "--group must be from 16 to 256")]
    [InlineData("--alpha", "1.5", "--alpha must be in [0, 1]")]
    public void Bad_options_are_usage_errors(string option, string value, string expected)
    {
        var r = CliRunner.Run("quantize", option, value, "--calib", "x.txt", "-o", "x.safetensors");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains(expected, r.SingleErrorLine());
    }

    [Theory]
    [InlineData("nf4", "--gptq", "--gptq applies to svdquant and w4a4-smooth, not nf4")]
    [InlineData("w8a8", "--activations=asymmetric", "--activations asymmetric applies to the W4A4 methods, not w8a8")]
    public void Options_that_do_not_apply_to_the_method_are_usage_errors(string method, string option, string expected)
    {
        var r = CliRunner.Run("quantize", "--method", method, option, "--calib", "x.txt", "-o", Path.Combine(_dir, "x.safetensors"));
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains(expected, r.SingleErrorLine());
    }

    [Fact]
    public void An_unknown_activation_coding_is_a_usage_error()
    {
        var r = CliRunner.Run("quantize", "--activations", "unsigned", "--calib", "x.txt", "-o", Path.Combine(_dir, "x.safetensors"));
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("unsigned", r.Error);
    }

    [Fact]
    public void Missing_calibration_or_variant_is_a_usage_error()
    {
        Assert.Equal(ExitCodes.Usage, CliRunner.Run("quantize", "-o", Path.Combine(_dir, "x.safetensors")).ExitCode);
        var r = CliRunner.Run("quantize", "--report", "--prompts", "p.txt", "-o", _dir);
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("--variant", r.SingleErrorLine());
    }

    [Fact]
    public void A_file_that_is_not_a_quantized_unet_is_bad_input_and_leaves_no_output()
    {
        string model = TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);
        string prompts = Path.Combine(_dir, "p.txt");
        File.WriteAllText(prompts, "a cat\n");
        string notQuantized = TinyModelFixtures.WeightsPath(TinyModelFixtures.Mobile, "unet");
        var r = CliRunner.Run("quantize", "--report", "-m", model, "--prompts", prompts, "--variant", notQuantized, "-o", Path.Combine(_dir, "rep"), "-t", "1");
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Contains("not a quantized UNet", r.SingleErrorLine());

        string output = Path.Combine(_dir, "never.safetensors");
        var q = CliRunner.Run("quantize", "-m", Path.Combine(_dir, "missing-model"), "--calib", prompts, "-o", output);
        Assert.Equal(ExitCodes.BadInput, q.ExitCode);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(_dir, "never.safetensors*"));
    }
}
