using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Elementwise;

namespace DiffusionSharp.Models.Configs;

/// <summary>
/// Configuration of <see cref="Unet.Unet2DConditionModel"/>: diffusers' <c>UNet2DConditionModel</c> config (the SD
/// 1.x subset) plus the project's MobileDiffusion extension keys, which all default to Stable Diffusion behaviour.
/// Per-level values are stored resolved (one entry per resolution level, level 0 = highest resolution), whether the
/// JSON gave an int or a list. Defaults are <see cref="Sd15"/>. Call <see cref="Validate"/> after building one in code.
/// </summary>
public sealed record UnetConfig
{
    public const string CrossAttnDownBlock2D = "CrossAttnDownBlock2D";
    public const string DownBlock2D = "DownBlock2D";
    public const string CrossAttnUpBlock2D = "CrossAttnUpBlock2D";
    public const string UpBlock2D = "UpBlock2D";

    /// <summary>Stable Diffusion 1.5: runwayml/stable-diffusion-v1-5 <c>unet/config.json</c> (block_out_channels
    /// [320, 640, 1280, 1280], layers_per_block 2, attention_head_dim 8 — the head count, a diffusers quirk —,
    /// cross_attention_dim 768, norm_num_groups 32, norm_eps 1e-5, flip_sin_to_cos true, freq_shift 0,
    /// 3 x CrossAttnDownBlock2D + DownBlock2D, UpBlock2D + 3 x CrossAttnUpBlock2D, 1x1-conv projections).</summary>
    public static UnetConfig Sd15 { get; } = new();

    /// <summary><c>sample_size</c>: the latent size the model was trained at (64 for 512x512 pixels).</summary>
    public int SampleSize { get; init; } = 64;
    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    /// <summary><c>center_input_sample</c>: feed 2 * sample - 1 instead of the sample.</summary>
    public bool CenterInputSample { get; init; }
    public bool FlipSinToCos { get; init; } = true;
    public int FreqShift { get; init; }
    public ValueList<string> DownBlockTypes { get; init; } = [CrossAttnDownBlock2D, CrossAttnDownBlock2D, CrossAttnDownBlock2D, DownBlock2D];
    public ValueList<string> UpBlockTypes { get; init; } = [UpBlock2D, CrossAttnUpBlock2D, CrossAttnUpBlock2D, CrossAttnUpBlock2D];
    public ValueList<int> BlockOutChannels { get; init; } = [320, 640, 1280, 1280];
    /// <summary><c>layers_per_block</c> per level: resnets per down block (up blocks have one more).</summary>
    public ValueList<int> LayersPerBlock { get; init; } = [2, 2, 2, 2];
    /// <summary><c>transformer_layers_per_block</c> per level; 0 = no attentions at that level (DownBlock2D / UpBlock2D).</summary>
    public ValueList<int> TransformerLayersPerBlock { get; init; } = [1, 1, 1, 0];
    /// <summary>Ours: <c>mid_block_transformer_layers</c> (default: the last level's transformer_layers_per_block entry).</summary>
    public int MidBlockTransformerLayers { get; init; } = 1;
    /// <summary>Attention heads per level (<c>num_attention_heads</c>, or diffusers' misnamed <c>attention_head_dim</c>).</summary>
    public ValueList<int> AttentionHeads { get; init; } = [8, 8, 8, 8];
    public int CrossAttentionDim { get; init; } = 768;
    public int NormNumGroups { get; init; } = 32;
    public float NormEps { get; init; } = 1e-5f;
    /// <summary><c>use_linear_projection</c>: proj_in/proj_out are Linear [C, C] (SD 2.x) instead of 1x1 conv [C, C, 1, 1].</summary>
    public bool UseLinearProjection { get; init; }
    /// <summary><c>upcast_attention</c>: no effect here (attention is always computed in fp32); kept for round trips.</summary>
    public bool UpcastAttention { get; init; }
    /// <summary><c>time_cond_proj_dim</c>: width of the guidance-scale embedding fed to <c>time_embedding.cond_proj</c>.</summary>
    public int? TimeCondProjDim { get; init; }
    /// <summary>Ours: <c>self_attention_per_block</c>; false = that level's transformer blocks are cross-attention only.</summary>
    public ValueList<bool> SelfAttentionPerBlock { get; init; } = [true, true, true, true];
    /// <summary>Ours: <c>shared_kv_projection</c>; one <c>to_kv</c> projection, K = V.</summary>
    public bool SharedKvProjection { get; init; }
    /// <summary>Ours: <c>attention_activation</c>, "softmax" or "relu" (relu(QKᵀ·scale) / Tk).</summary>
    public AttentionActivation AttentionActivation { get; init; } = AttentionActivation.Softmax;
    /// <summary>Ours: <c>ff_activation</c>, "geglu" or "swiglu".</summary>
    public GateKind FeedForwardActivation { get; init; } = GateKind.Geglu;
    /// <summary>Ours: <c>ff_mult</c>; the feed-forward's inner width is ff_mult * channels (SD: 4).</summary>
    public int FeedForwardMult { get; init; } = 4;
    /// <summary>Ours: <c>separable_conv_per_block</c>; resnet convolutions at that level are depthwise-separable.
    /// The mid block follows the last level.</summary>
    public ValueList<bool> SeparableConvPerBlock { get; init; } = [false, false, false, false];

    public int Levels => BlockOutChannels.Count;

    /// <summary>Width of the time embedding: 4 * block_out_channels[0].</summary>
    public int TimeEmbedDim => 4 * BlockOutChannels[0];

    /// <summary>Spatial reduction from the input to the lowest level: 2^(levels - 1).</summary>
    public int DownscaleFactor => 1 << (Levels - 1);

    /// <summary>Checks the configuration is consistent and implemented; <see cref="ConfigException"/> names the key.</summary>
    public UnetConfig Validate(string source = nameof(UnetConfig))
    {
        void Require(bool ok, string key, string message)
        {
            if (!ok) throw new ConfigException(source, key, message);
        }

        int levels = Levels;
        Require(levels >= 1, "block_out_channels", "must not be empty");
        Require(SampleSize >= 1, "sample_size", "must be >= 1");
        Require(InChannels >= 1, "in_channels", "must be >= 1");
        Require(OutChannels >= 1, "out_channels", "must be >= 1");
        Require(CrossAttentionDim >= 1, "cross_attention_dim", "must be >= 1");
        Require(NormNumGroups >= 1, "norm_num_groups", "must be >= 1");
        Require(NormEps > 0 && float.IsFinite(NormEps), "norm_eps", "must be a positive number");
        Require(TimeCondProjDim is null or >= 4, "time_cond_proj_dim", "must be >= 4 when set (the guidance embedding divides by dim/2 - 1)");
        Require(FeedForwardMult >= 1, "ff_mult", $"must be a positive integer, got {FeedForwardMult}");
        Require(Enum.IsDefined(AttentionActivation), "attention_activation", "must be 'softmax' or 'relu'");
        Require(Enum.IsDefined(FeedForwardActivation), "ff_activation", "must be 'geglu' or 'swiglu'");
        CheckLevels(DownBlockTypes.Count, "down_block_types");
        CheckLevels(UpBlockTypes.Count, "up_block_types");
        CheckLevels(LayersPerBlock.Count, "layers_per_block");
        CheckLevels(TransformerLayersPerBlock.Count, "transformer_layers_per_block");
        CheckLevels(AttentionHeads.Count, "attention_head_dim");
        CheckLevels(SelfAttentionPerBlock.Count, "self_attention_per_block");
        CheckLevels(SeparableConvPerBlock.Count, "separable_conv_per_block");
        foreach (var t in DownBlockTypes)
            Require(t is CrossAttnDownBlock2D or DownBlock2D, "down_block_types", $"unsupported block type '{t}' (supported: {CrossAttnDownBlock2D}, {DownBlock2D})");
        foreach (var t in UpBlockTypes)
            Require(t is CrossAttnUpBlock2D or UpBlock2D, "up_block_types", $"unsupported block type '{t}' (supported: {CrossAttnUpBlock2D}, {UpBlock2D})");
        for (int i = 0; i < levels; i++)
        {
            Require(BlockOutChannels[i] >= 1, "block_out_channels", $"entry {i} must be >= 1");
            Require(BlockOutChannels[i] % NormNumGroups == 0, "block_out_channels",
                $"block_out_channels[{i}] = {BlockOutChannels[i]} is not divisible by norm_num_groups {NormNumGroups}");
            Require(LayersPerBlock[i] >= 1, "layers_per_block", $"must be >= 1, got {LayersPerBlock}");
            int depth = TransformerLayersPerBlock[i];
            Require(depth >= 0, "transformer_layers_per_block", $"entries must be >= 0, got {TransformerLayersPerBlock}");
            string down = DownBlockTypes[i], up = UpBlockTypes[levels - 1 - i];
            Require((depth > 0) == (down == CrossAttnDownBlock2D), "transformer_layers_per_block",
                $"level {i}: depth {depth} does not match down block type {down}");
            Require((depth > 0) == (up == CrossAttnUpBlock2D), "transformer_layers_per_block",
                $"level {i}: depth {depth} does not match up block type {up} (up_block_types[{levels - 1 - i}])");
            if (depth > 0 || i == levels - 1)
                Require(AttentionHeads[i] >= 1 && BlockOutChannels[i] % AttentionHeads[i] == 0, "attention_head_dim",
                    $"level {i}: {BlockOutChannels[i]} channels are not divisible by {AttentionHeads[i]} attention heads");
        }
        Require(MidBlockTransformerLayers >= 1, "mid_block_transformer_layers", $"must be >= 1, got {MidBlockTransformerLayers}");
        return this;

        void CheckLevels(int count, string key)
            => Require(count == levels, key, $"has {count} entries but block_out_channels has {levels} levels");
    }

    /// <summary>Reads a diffusers <c>unet/config.json</c> (and our extension keys); <paramref name="sourceName"/> names
    /// the file in errors. Unknown keys are ignored; known keys with values the engine does not implement are rejected.</summary>
    public static UnetConfig FromJson(string json, string sourceName)
    {
        var r = ConfigJsonReader.Parse(json, sourceName);
        string? className = r.String("_class_name", null);
        if (className is not null && className != "UNet2DConditionModel")
            throw r.Error("_class_name", $"expected UNet2DConditionModel, got '{className}'");
        r.RequireSupported("mid_block_type", "UNetMidBlock2DCrossAttn");
        r.RequireSupported("only_cross_attention", false);
        r.RequireSupported("dual_cross_attention", false);
        r.RequireSupported("class_embed_type", null);
        r.RequireSupported("num_class_embeds", null);
        r.RequireSupported("addition_embed_type", null);
        r.RequireSupported("encoder_hid_dim", null);
        r.RequireSupported("encoder_hid_dim_type", null);
        r.RequireSupported("resnet_time_scale_shift", "default");
        r.RequireSupported("resnet_skip_time_act", false);
        r.RequireSupported("resnet_out_scale_factor", 1.0);
        r.RequireSupported("time_embedding_type", "positional");
        r.RequireSupported("time_embedding_dim", null);
        r.RequireSupported("time_embedding_act_fn", null);
        r.RequireSupported("timestep_post_act", null);
        r.RequireSupported("cross_attention_norm", null);
        r.RequireSupported("attention_type", "default");
        r.RequireSupported("reverse_transformer_layers_per_block", null);
        r.RequireSupported("mid_block_only_cross_attention", false);
        r.RequireSupported("act_fn", "silu");
        r.RequireSupported("conv_in_kernel", 3);
        r.RequireSupported("conv_out_kernel", 3);
        r.RequireSupported("downsample_padding", 1);
        r.RequireSupported("mid_block_scale_factor", 1.0);

        var d = Sd15;
        var blockOut = r.IntList("block_out_channels", d.BlockOutChannels);
        int levels = blockOut.Count;
        if (levels == 0) throw r.Error("block_out_channels", "must not be empty");
        var downTypes = r.StringList("down_block_types", d.DownBlockTypes);
        // diffusers: a scalar transformer_layers_per_block (default 1) applies to the CrossAttn levels and the mid block;
        // a list gives every level, and the mid block follows the last entry unless mid_block_transformer_layers says otherwise.
        ValueList<int> depths;
        int midDepth;
        if (r.Has("transformer_layers_per_block") && !r.IsNumber("transformer_layers_per_block"))
        {
            depths = r.IntPerLevel("transformer_layers_per_block", levels, d.TransformerLayersPerBlock);
            midDepth = depths[^1];
        }
        else
        {
            midDepth = r.Int("transformer_layers_per_block", 1);
            depths = ValueList.Create<int>(downTypes.Select(t => t == CrossAttnDownBlock2D ? midDepth : 0).ToArray());
        }
        string headsKey = r.Has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
        var config = new UnetConfig
        {
            SampleSize = r.Int("sample_size", d.SampleSize),
            InChannels = r.Int("in_channels", d.InChannels),
            OutChannels = r.Int("out_channels", d.OutChannels),
            CenterInputSample = r.Bool("center_input_sample", d.CenterInputSample),
            FlipSinToCos = r.Bool("flip_sin_to_cos", d.FlipSinToCos),
            FreqShift = r.Int("freq_shift", d.FreqShift),
            DownBlockTypes = downTypes,
            UpBlockTypes = r.StringList("up_block_types", d.UpBlockTypes),
            BlockOutChannels = blockOut,
            LayersPerBlock = r.IntPerLevel("layers_per_block", levels, ValueList.Repeat(2, levels)),
            TransformerLayersPerBlock = depths,
            MidBlockTransformerLayers = r.Int("mid_block_transformer_layers", midDepth),
            AttentionHeads = r.IntPerLevel(headsKey, levels, ValueList.Repeat(8, levels)),
            CrossAttentionDim = r.Int("cross_attention_dim", d.CrossAttentionDim),
            NormNumGroups = r.Int("norm_num_groups", d.NormNumGroups),
            NormEps = (float)r.Double("norm_eps", d.NormEps),
            UseLinearProjection = r.Bool("use_linear_projection", d.UseLinearProjection),
            UpcastAttention = r.Bool("upcast_attention", d.UpcastAttention),
            TimeCondProjDim = r.NullableInt("time_cond_proj_dim", d.TimeCondProjDim),
            SelfAttentionPerBlock = r.BoolPerLevel("self_attention_per_block", levels, ValueList.Repeat(true, levels)),
            SharedKvProjection = r.Bool("shared_kv_projection", d.SharedKvProjection),
            AttentionActivation = r.String("attention_activation", "softmax") switch
            {
                "softmax" => AttentionActivation.Softmax,
                "relu" => AttentionActivation.Relu,
                var other => throw r.Error("attention_activation", $"must be 'softmax' or 'relu', got '{other}'"),
            },
            FeedForwardActivation = r.String("ff_activation", "geglu") switch
            {
                "geglu" => GateKind.Geglu,
                "swiglu" => GateKind.Swiglu,
                var other => throw r.Error("ff_activation", $"must be 'geglu' or 'swiglu', got '{other}'"),
            },
            FeedForwardMult = r.Int("ff_mult", d.FeedForwardMult),
            SeparableConvPerBlock = r.BoolPerLevel("separable_conv_per_block", levels, ValueList.Repeat(false, levels)),
        };
        return config.Validate(sourceName);
    }

    /// <summary>Writes a diffusers-compatible <c>unet/config.json</c>; extension keys only where they differ from SD behaviour,
    /// per-level values as a scalar where a scalar means the same.</summary>
    public string ToJson()
    {
        Validate();
        using var w = new ConfigJsonWriter("UNet2DConditionModel", "_diffusers_version", "0.27.2");
        w.Write("sample_size", SampleSize)
            .Write("in_channels", InChannels)
            .Write("out_channels", OutChannels)
            .Write("center_input_sample", CenterInputSample)
            .Write("flip_sin_to_cos", FlipSinToCos)
            .Write("freq_shift", FreqShift)
            .Write("down_block_types", DownBlockTypes)
            .Write("mid_block_type", "UNetMidBlock2DCrossAttn")
            .Write("up_block_types", UpBlockTypes)
            .Write("block_out_channels", BlockOutChannels)
            .Write("downsample_padding", 1)
            .Write("mid_block_scale_factor", 1)
            .Write("act_fn", "silu")
            .Write("norm_num_groups", NormNumGroups)
            .Write("norm_eps", NormEps)
            .Write("cross_attention_dim", CrossAttentionDim)
            .Write("use_linear_projection", UseLinearProjection)
            .Write("upcast_attention", UpcastAttention)
            .Write("time_cond_proj_dim", TimeCondProjDim);
        WritePerLevel(w, "layers_per_block", LayersPerBlock);
        WritePerLevel(w, "attention_head_dim", AttentionHeads);
        int attentionDepth = TransformerLayersPerBlock.FirstOrDefault(n => n > 0, MidBlockTransformerLayers);
        bool scalarDepth = MidBlockTransformerLayers == attentionDepth
            && Enumerable.Range(0, Levels).All(i => TransformerLayersPerBlock[i] == (DownBlockTypes[i] == CrossAttnDownBlock2D ? attentionDepth : 0));
        if (scalarDepth)
        {
            w.Write("transformer_layers_per_block", attentionDepth);
        }
        else
        {
            w.Write("transformer_layers_per_block", TransformerLayersPerBlock);
            if (MidBlockTransformerLayers != TransformerLayersPerBlock[^1]) w.Write("mid_block_transformer_layers", MidBlockTransformerLayers);
        }
        if (SelfAttentionPerBlock.Any(b => !b)) w.Write("self_attention_per_block", SelfAttentionPerBlock);
        if (SharedKvProjection) w.Write("shared_kv_projection", true);
        if (AttentionActivation != AttentionActivation.Softmax) w.Write("attention_activation", "relu");
        if (FeedForwardActivation != GateKind.Geglu) w.Write("ff_activation", "swiglu");
        if (FeedForwardMult != 4) w.Write("ff_mult", FeedForwardMult);
        if (SeparableConvPerBlock.Any(b => b)) w.Write("separable_conv_per_block", SeparableConvPerBlock);
        return w.Finish();
    }

    private static void WritePerLevel(ConfigJsonWriter w, string key, ValueList<int> values)
    {
        if (values.All(v => v == values[0])) w.Write(key, values[0]);
        else w.Write(key, values);
    }
}
