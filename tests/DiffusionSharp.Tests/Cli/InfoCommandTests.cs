using System.Globalization;
using DiffusionSharp.Cli;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Cli;

/// <summary>
/// <c>diffusion info</c> on the tiny models. Parameter counts are checked against the number of values stored in each
/// component's safetensors file (every tensor of the tiny models is a parameter) and the loaded modules' own count.
/// </summary>
public class InfoCommandTests
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static long StoredValues(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
    }

    private static string Line(string[] lines, string label) => Assert.Single(lines, l => l.StartsWith(label, StringComparison.Ordinal));

    [Theory]
    [InlineData(TinyModelFixtures.Sd15, "Stable Diffusion 1.x", 2)]
    [InlineData(TinyModelFixtures.Mobile, "MobileDiffusion-style", 1)]
    public void Describes_a_diffusers_folder(string model, string family, int passes)
    {
        string folder = TinyModelFixtures.ModelFolder(model);
        var r = CliRunner.Run("info", folder);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        string[] lines = r.OutputLines;
        Assert.StartsWith($"family       {family} (", Line(lines, "family"));

        using var m = ModelLoader.Load(folder, new ModelLoadOptions { LoadVaeEncoder = true });
        long text = StoredValues(TinyModelFixtures.WeightsPath(model, "text_encoder"));
        long unet = StoredValues(TinyModelFixtures.WeightsPath(model, "unet"));
        long vae = StoredValues(TinyModelFixtures.WeightsPath(model, "vae"));
        Assert.Equal((text, unet, vae), (m.TextEncoder.ParameterCount, m.Unet.ParameterCount, m.Vae.ParameterCount));
        Assert.StartsWith($"text encoder {text.ToString("N0", Inv)} params", Line(lines, "text encoder"));
        Assert.StartsWith($"unet         {unet.ToString("N0", Inv)} params", Line(lines, "unet "));
        Assert.StartsWith($"vae          {vae.ToString("N0", Inv)} params", Line(lines, "vae "));
        Assert.StartsWith($"total {(text + unet + vae).ToString("N0", Inv)} params", Line(lines, "total "));

        // The per-level table: one row per level of the config, then the mid block, at the 8x8 latent.
        var config = TinyModelFixtures.LoadUnetConfig(model);
        int header = Array.FindIndex(lines, l => l.Trim() == "level  size     channels  resnets  transformers  self-attn  conv");
        Assert.True(header > 0, "no per-level table header");
        for (int i = 0; i < config.Levels; i++)
        {
            int size = 8 >> i;
            int depth = config.TransformerLayersPerBlock[i];
            string selfAttention = depth == 0 ? "-" : config.SelfAttentionPerBlock[i] ? "yes" : "no";
            string conv = config.SeparableConvPerBlock[i] ? "separable" : "3x3";
            Assert.Equal(
                [i.ToString(Inv), $"{size}x{size}", config.BlockOutChannels[i].ToString(Inv), config.LayersPerBlock[i].ToString(Inv),
                 depth.ToString(Inv), selfAttention, conv],
                lines[header + 1 + i].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }
        Assert.StartsWith("mid", lines[header + 1 + config.Levels].TrimStart());

        double unetGflop = m.Unet.FlopsPerForward(8, 8, 77) / 1e9;
        double vaeGflop = m.Vae.DecodeFlops(8, 8) / 1e9;
        int size0 = 8 * m.LatentScale;
        Assert.Equal(string.Create(Inv,
            $"at {size0}x{size0} (latent 8x8): UNet {unetGflop:0.###} GFLOP per evaluation, {passes * unetGflop:0.###} GFLOP per step " +
            $"with CFG ({passes} pass{(passes == 1 ? "" : "es")}); VAE decode {vaeGflop:0.###} GFLOP"), Line(lines, "at "));
    }

    [Fact]
    public void The_size_option_changes_the_flop_line()
    {
        var r = CliRunner.Run("info", TestCheckpoints.Sd15Folder, "-W", "128", "-H", "64");
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.StartsWith("at 128x64 (latent 16x8): UNet ", Line(r.OutputLines, "at "));

        var bad = CliRunner.Run("info", TestCheckpoints.Sd15Folder, "-W", "60");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("not a multiple of the VAE's factor 8", bad.SingleErrorLine());
    }

    [Fact]
    public void A_non_standard_single_file_needs_its_configs()
    {
        var refused = CliRunner.Run("info", TestCheckpoints.Sd15SingleFile);
        Assert.Equal(ExitCodes.BadInput, refused.ExitCode);
        string error = refused.SingleErrorLine();
        Assert.Contains("not the standard SD 1.x shape", error);
        Assert.Contains("--model-config", error);
        Assert.Empty(refused.Output);

        var r = CliRunner.Run("info", TestCheckpoints.Sd15SingleFile, "--model-config", TestCheckpoints.Sd15Folder);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        using var file = SafetensorsFile.Open(TestCheckpoints.Sd15SingleFile);
        int f16 = file.Tensors.Count(t => t.DType == SafetensorsDType.F16), i64 = file.Tensors.Count(t => t.DType == SafetensorsDType.I64);
        Assert.Equal(file.Tensors.Count, f16 + i64);
        Assert.StartsWith($"stored       {file.Tensors.Count} tensors: ", Line(r.OutputLines, "stored"));
        Assert.Contains($"{i64} I64", Line(r.OutputLines, "stored"));
        Assert.Contains($"{f16} F16", Line(r.OutputLines, "stored"));
        Assert.StartsWith("family       Stable Diffusion 1.x (", Line(r.OutputLines, "family"));
        Assert.StartsWith("at 64x64 (latent 8x8): ", Line(r.OutputLines, "at "));
    }
}
