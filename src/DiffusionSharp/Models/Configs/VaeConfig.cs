namespace DiffusionSharp.Models.Configs;

/// <summary>
/// Configuration of <see cref="Vae.AutoencoderKL"/>: diffusers' <c>AutoencoderKL</c> config. The latent channel count
/// is a field (SD: 4; the MobileDiffusion-style model may use another). Defaults are <see cref="Sd15"/>.
/// </summary>
public sealed record VaeConfig
{
    public const string DownEncoderBlock2D = "DownEncoderBlock2D";
    public const string UpDecoderBlock2D = "UpDecoderBlock2D";

    /// <summary>Stable Diffusion 1.5's VAE (runwayml/stable-diffusion-v1-5 <c>vae/config.json</c>: block_out_channels
    /// [128, 256, 512, 512], layers_per_block 2, latent_channels 4, norm_num_groups 32, scaling_factor 0.18215).</summary>
    public static VaeConfig Sd15 { get; } = new();

    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public ValueList<int> BlockOutChannels { get; init; } = [128, 256, 512, 512];
    public int LayersPerBlock { get; init; } = 2;
    public int LatentChannels { get; init; } = 4;
    public int NormNumGroups { get; init; } = 32;
    public int SampleSize { get; init; } = 512;
    /// <summary>Latents are z * scaling_factor for the UNet; <see cref="Vae.AutoencoderKL.Decode"/> takes z unscaled.</summary>
    public float ScalingFactor { get; init; } = 0.18215f;
    public bool ForceUpcast { get; init; } = true;
    public bool UseQuantConv { get; init; } = true;
    public bool UsePostQuantConv { get; init; } = true;
    public bool MidBlockAddAttention { get; init; } = true;

    public int Levels => BlockOutChannels.Count;

    /// <summary>Pixels per latent along each axis: 2^(levels - 1) (8 for SD).</summary>
    public int DownscaleFactor => 1 << (Levels - 1);

    public VaeConfig Validate(string source = nameof(VaeConfig))
    {
        void Require(bool ok, string key, string message)
        {
            if (!ok) throw new ConfigException(source, key, message);
        }

        Require(Levels >= 1, "block_out_channels", "must not be empty");
        Require(InChannels >= 1, "in_channels", "must be >= 1");
        Require(OutChannels >= 1, "out_channels", "must be >= 1");
        Require(LayersPerBlock >= 1, "layers_per_block", "must be >= 1");
        Require(LatentChannels >= 1, "latent_channels", "must be >= 1");
        Require(NormNumGroups >= 1, "norm_num_groups", "must be >= 1");
        Require(ScalingFactor > 0 && float.IsFinite(ScalingFactor), "scaling_factor", "must be a positive number");
        for (int i = 0; i < Levels; i++)
            Require(BlockOutChannels[i] >= 1 && BlockOutChannels[i] % NormNumGroups == 0, "block_out_channels",
                $"block_out_channels[{i}] = {BlockOutChannels[i]} is not divisible by norm_num_groups {NormNumGroups}");
        return this;
    }

    /// <summary>Reads a diffusers <c>vae/config.json</c>. Unknown keys are ignored; known keys with values the engine
    /// does not implement are rejected.</summary>
    public static VaeConfig FromJson(string json, string sourceName)
    {
        var r = ConfigJsonReader.Parse(json, sourceName);
        string? className = r.String("_class_name", null);
        if (className is not null && className != "AutoencoderKL")
            throw r.Error("_class_name", $"expected AutoencoderKL, got '{className}'");
        r.RequireSupported("act_fn", "silu");
        var d = Sd15;
        var blockOut = r.IntList("block_out_channels", d.BlockOutChannels);
        var down = r.StringList("down_block_types", ValueList.Repeat(DownEncoderBlock2D, blockOut.Count));
        var up = r.StringList("up_block_types", ValueList.Repeat(UpDecoderBlock2D, blockOut.Count));
        if (down.Count != blockOut.Count || down.Any(t => t != DownEncoderBlock2D))
            throw r.Error("down_block_types", $"must be {blockOut.Count} x {DownEncoderBlock2D}, got {down}");
        if (up.Count != blockOut.Count || up.Any(t => t != UpDecoderBlock2D))
            throw r.Error("up_block_types", $"must be {blockOut.Count} x {UpDecoderBlock2D}, got {up}");
        var config = new VaeConfig
        {
            InChannels = r.Int("in_channels", d.InChannels),
            OutChannels = r.Int("out_channels", d.OutChannels),
            BlockOutChannels = blockOut,
            LayersPerBlock = r.Int("layers_per_block", d.LayersPerBlock),
            LatentChannels = r.Int("latent_channels", d.LatentChannels),
            NormNumGroups = r.Int("norm_num_groups", d.NormNumGroups),
            SampleSize = r.Int("sample_size", d.SampleSize),
            ScalingFactor = (float)r.Double("scaling_factor", d.ScalingFactor),
            ForceUpcast = r.Bool("force_upcast", d.ForceUpcast),
            UseQuantConv = r.Bool("use_quant_conv", d.UseQuantConv),
            UsePostQuantConv = r.Bool("use_post_quant_conv", d.UsePostQuantConv),
            MidBlockAddAttention = r.Bool("mid_block_add_attention", d.MidBlockAddAttention),
        };
        return config.Validate(sourceName);
    }

    public string ToJson()
    {
        Validate();
        using var w = new ConfigJsonWriter("AutoencoderKL", "_diffusers_version", "0.27.2");
        return w.Write("in_channels", InChannels)
            .Write("out_channels", OutChannels)
            .Write("down_block_types", Enumerable.Repeat(DownEncoderBlock2D, Levels))
            .Write("up_block_types", Enumerable.Repeat(UpDecoderBlock2D, Levels))
            .Write("block_out_channels", BlockOutChannels)
            .Write("layers_per_block", LayersPerBlock)
            .Write("act_fn", "silu")
            .Write("latent_channels", LatentChannels)
            .Write("norm_num_groups", NormNumGroups)
            .Write("sample_size", SampleSize)
            .Write("scaling_factor", ScalingFactor)
            .Write("force_upcast", ForceUpcast)
            .Write("use_quant_conv", UseQuantConv)
            .Write("use_post_quant_conv", UsePostQuantConv)
            .Write("mid_block_add_attention", MidBlockAddAttention)
            .Finish();
    }
}
