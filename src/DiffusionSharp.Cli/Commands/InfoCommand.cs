using System.CommandLine;
using System.Globalization;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;

namespace DiffusionSharp.Cli.Commands;

/// <summary>
/// <c>diffusion info</c>: what a model is — family, components, parameters, stored dtypes, the UNet's per-level design
/// and its cost per step at a size — so the MobileDiffusion trade-offs are numbers.
/// </summary>
public static class InfoCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Argument<string?>("model") { Description = "Single-file .safetensors checkpoint or diffusers folder. Default: the shipped model.", Arity = ArgumentArity.ZeroOrOne };
        var width = new Option<int?>("--width", "-W") { Description = "Image width for the FLOP counts. Default: the model's." };
        var height = new Option<int?>("--height", "-H") { Description = "Image height for the FLOP counts. Default: the model's." };
        var modelConfig = new Option<string?>("--model-config") { Description = "A diffusers folder with config.json files for a single file of non-standard shape." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Stack traces on errors." };
        var command = new Command("info", "Describe a model: family, components, parameter counts, dtypes, UNet design and GFLOPs per step.")
        {
            model, width, height, modelConfig, verbose,
        };
        command.SetAction(parse =>
        {
            try
            {
                string path = parse.GetValue(model) ?? DefaultModel.Path;
                using var m = ModelLoader.Load(path, new ModelLoadOptions { ConfigFolder = parse.GetValue(modelConfig), LoadVaeEncoder = true });
                Print(output, m, path, parse.GetValue(width), parse.GetValue(height));
                return ExitCodes.Success;
            }
            catch (Exception e)
            {
                return CommandErrors.Report(e, error, parse.GetValue(verbose));
            }
        });
        return command;
    }

    private static void Print(TextWriter o, StableDiffusionModel m, string path, int? width, int? height)
    {
        var inv = CultureInfo.InvariantCulture;
        int w = width ?? m.Defaults.Width, h = height ?? m.Defaults.Height;
        if (w % m.LatentScale != 0 || h % m.LatentScale != 0)
            throw new Pipeline.InvalidSettingException($"Size {w}x{h} is not a multiple of the VAE's factor {m.LatentScale}.", "width");
        int lh = h / m.LatentScale, lw = w / m.LatentScale;
        var u = m.Unet.Config;
        o.WriteLine($"model        {path}");
        o.WriteLine($"family       {m.Family.DisplayName} ({m.Family.Evidence})");
        o.WriteLine($"prediction   {(m.Scheduler.Prediction == Sampling.ModelPrediction.VPrediction ? "v" : "epsilon")}, {m.Scheduler.BetaSchedule} betas {m.Scheduler.BetaStart.ToString(inv)}..{m.Scheduler.BetaEnd.ToString(inv)} over {m.Scheduler.TrainTimesteps} steps");
        o.WriteLine($"defaults     {m.Defaults.Width}x{m.Defaults.Height}, {m.Defaults.Steps} steps, cfg {m.Defaults.CfgScale.ToString(inv)}, {m.Defaults.Sampler}, {m.Defaults.Scheduler}" +
                    (m.HasGuidanceEmbedding ? " (guidance embedded: one UNet pass per step)" : ""));
        if (File.Exists(path)) PrintDtypes(o, path);
        o.WriteLine();
        o.WriteLine($"text encoder {Params(m.TextEncoder.ParameterCount)}  CLIP: {m.TextEncoder.Config.NumHiddenLayers} layers x {m.TextEncoder.Config.HiddenSize} wide, {m.TextEncoder.Config.NumAttentionHeads} heads, {m.TextEncoder.Config.MaxPositionEmbeddings} tokens");
        o.WriteLine($"unet         {Params(m.Unet.ParameterCount)}  {u.InChannels} latent channels, context {u.CrossAttentionDim}, attention {u.AttentionActivation.ToString().ToLowerInvariant()}{(u.SharedKvProjection ? ", shared K/V" : "")}, feed-forward {u.FeedForwardActivation.ToString().ToLowerInvariant()} x{u.FeedForwardMult}{(u.TimeCondProjDim is { } g ? $", guidance embedding {g}" : "")}");
        o.WriteLine("             level  size     channels  resnets  transformers  self-attn  conv");
        int size = Math.Max(lh, lw);
        for (int i = 0; i < u.Levels; i++)
        {
            int s = (int)Math.Ceiling(size / (double)(1 << i));
            o.WriteLine($"             {i,5}  {s + "x" + s,-7}  {u.BlockOutChannels[i],8}  {u.LayersPerBlock[i],7}  {u.TransformerLayersPerBlock[i],12}  {(u.TransformerLayersPerBlock[i] == 0 ? "-" : u.SelfAttentionPerBlock[i] ? "yes" : "no"),9}  {(u.SeparableConvPerBlock[i] ? "separable" : "3x3")}");
        }
        o.WriteLine($"             mid    {(int)Math.Ceiling(size / (double)(1 << (u.Levels - 1))) + "x" + (int)Math.Ceiling(size / (double)(1 << (u.Levels - 1))),-7}  {u.BlockOutChannels[^1],8}        2  {u.MidBlockTransformerLayers,12}        yes  {(u.SeparableConvPerBlock[^1] ? "separable" : "3x3")}");
        o.WriteLine($"vae          {Params(m.Vae.ParameterCount)}  f{m.LatentScale}, {m.Vae.Config.LatentChannels} latent channels, widths [{string.Join(", ", m.Vae.Config.BlockOutChannels)}], scaling factor {m.Vae.Config.ScalingFactor.ToString(inv)}");
        o.WriteLine();
        double unetFlops = m.Unet.FlopsPerForward(lh, lw, m.TextEncoder.Config.MaxPositionEmbeddings);
        int passes = m.HasGuidanceEmbedding ? 1 : 2;
        o.WriteLine(string.Create(inv, $"at {w}x{h} (latent {lw}x{lh}): UNet {unetFlops / 1e9:0.###} GFLOP per evaluation, {passes * unetFlops / 1e9:0.###} GFLOP per step with CFG ({passes} pass{(passes == 1 ? "" : "es")}); VAE decode {m.Vae.DecodeFlops(lh, lw) / 1e9:0.###} GFLOP"));
        o.WriteLine(string.Create(inv, $"total {Params(m.TextEncoder.ParameterCount + m.Unet.ParameterCount + m.Vae.ParameterCount)}; loaded in {m.LoadTime.TotalSeconds:0.00} s"));
    }

    private static void PrintDtypes(TextWriter o, string path)
    {
        using var f = SafetensorsFile.Open(path);
        var groups = f.Tensors.GroupBy(t => t.DType).Select(g => $"{g.Count()} {g.Key.ToHeaderString()}");
        o.WriteLine($"stored       {f.Tensors.Count} tensors: {string.Join(", ", groups)}; {new FileInfo(path).Length / 1e6:0.#} MB");
    }

    /// <summary>The exact count (grouped by thousands) and, from a million up, the rounded figure: "1,602,304 params (1.60 M)".</summary>
    private static string Params(long n)
    {
        string exact = n.ToString("N0", CultureInfo.InvariantCulture) + " params";
        return n >= 1_000_000 ? $"{exact} ({(n / 1e6).ToString("0.00", CultureInfo.InvariantCulture)} M)" : exact;
    }
}
