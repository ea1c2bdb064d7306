using DiffusionSharp.Kernels.Attention;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Models.Configs;

namespace DiffusionSharp.Tests.Models.Configs;

public class ConfigTests
{
    /// <summary>runwayml/stable-diffusion-v1-5 unet/config.json as published (diffusers 0.6.0).</summary>
    private const string Sd15UnetJson = """
        {
          "_class_name": "UNet2DConditionModel",
          "_diffusers_version": "0.6.0",
          "act_fn": "silu",
          "attention_head_dim": 8,
          "block_out_channels": [320, 640, 1280, 1280],
          "center_input_sample": false,
          "cross_attention_dim": 768,
          "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
          "downsample_padding": 1,
          "flip_sin_to_cos": true,
          "freq_shift": 0,
          "in_channels": 4,
          "layers_per_block": 2,
          "mid_block_scale_factor": 1,
          "norm_eps": 1e-05,
          "norm_num_groups": 32,
          "out_channels": 4,
          "sample_size": 64,
          "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        }
        """;

    /// <summary>runwayml/stable-diffusion-v1-5 vae/config.json as published (older files lack scaling_factor).</summary>
    private const string Sd15VaeJson = """
        {
          "_class_name": "AutoencoderKL",
          "_diffusers_version": "0.6.0",
          "act_fn": "silu",
          "block_out_channels": [128, 256, 512, 512],
          "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
          "in_channels": 3,
          "latent_channels": 4,
          "layers_per_block": 2,
          "norm_num_groups": 32,
          "out_channels": 3,
          "sample_size": 512,
          "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
        }
        """;

    /// <summary>runwayml/stable-diffusion-v1-5 text_encoder/config.json (the fields the text tower uses).</summary>
    private const string Sd15TextJson = """
        {
          "_name_or_path": "openai/clip-vit-large-patch14",
          "architectures": ["CLIPTextModel"],
          "attention_dropout": 0.0,
          "bos_token_id": 0,
          "dropout": 0.0,
          "eos_token_id": 2,
          "hidden_act": "quick_gelu",
          "hidden_size": 768,
          "initializer_factor": 1.0,
          "initializer_range": 0.02,
          "intermediate_size": 3072,
          "layer_norm_eps": 1e-05,
          "max_position_embeddings": 77,
          "model_type": "clip_text_model",
          "num_attention_heads": 12,
          "num_hidden_layers": 12,
          "pad_token_id": 1,
          "projection_dim": 768,
          "torch_dtype": "float32",
          "transformers_version": "4.22.0.dev0",
          "vocab_size": 49408
        }
        """;

    [Fact]
    public void Sd15_presets_are_the_published_configs()
    {
        Assert.Equal(UnetConfig.Sd15, UnetConfig.FromJson(Sd15UnetJson, "sd15/unet/config.json"));
        Assert.Equal(VaeConfig.Sd15, VaeConfig.FromJson(Sd15VaeJson, "sd15/vae/config.json"));
        Assert.Equal(ClipTextConfig.Sd15, ClipTextConfig.FromJson(Sd15TextJson, "sd15/text_encoder/config.json"));
    }

    [Fact]
    public void Presets_and_fixture_configs_round_trip_through_json()
    {
        Assert.Equal(UnetConfig.Sd15, UnetConfig.FromJson(UnetConfig.Sd15.ToJson(), "round trip"));
        Assert.Equal(VaeConfig.Sd15, VaeConfig.FromJson(VaeConfig.Sd15.ToJson(), "round trip"));
        Assert.Equal(ClipTextConfig.Sd15, ClipTextConfig.FromJson(ClipTextConfig.Sd15.ToJson(), "round trip"));
        foreach (string model in new[] { TinyModelFixtures.Sd15, TinyModelFixtures.Mobile })
        {
            var unet = TinyModelFixtures.LoadUnetConfig(model);
            Assert.Equal(unet, UnetConfig.FromJson(unet.ToJson(), "round trip"));
            var vae = TinyModelFixtures.LoadVaeConfig(model);
            Assert.Equal(vae, VaeConfig.FromJson(vae.ToJson(), "round trip"));
            var text = TinyModelFixtures.LoadClipConfig(model);
            Assert.Equal(text, ClipTextConfig.FromJson(text.ToJson(), "round trip"));
        }
        Assert.DoesNotContain("shared_kv_projection", UnetConfig.Sd15.ToJson());
        Assert.Contains("\"norm_eps\": 1E-05", UnetConfig.Sd15.ToJson(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void MobileDiffusion_extension_keys_are_read()
    {
        var c = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Mobile);
        Assert.Equal([1, 1, 2], c.LayersPerBlock);
        Assert.Equal([0, 1, 2], c.TransformerLayersPerBlock);
        Assert.Equal(1, c.MidBlockTransformerLayers);
        Assert.Equal([2, 4, 4], c.AttentionHeads);
        Assert.Equal([false, false, true], c.SelfAttentionPerBlock);
        Assert.Equal([false, true, true], c.SeparableConvPerBlock);
        Assert.True(c.SharedKvProjection);
        Assert.True(c.UseLinearProjection);
        Assert.Equal(AttentionActivation.Relu, c.AttentionActivation);
        Assert.Equal(GateKind.Swiglu, c.FeedForwardActivation);
        Assert.Equal(3, c.FeedForwardMult);
        Assert.Equal(32, c.TimeCondProjDim);
        Assert.Equal(3, TinyModelFixtures.LoadVaeConfig(TinyModelFixtures.Mobile).LatentChannels);
        Assert.Equal(ActivationKind.Gelu, TinyModelFixtures.LoadClipConfig(TinyModelFixtures.Mobile).HiddenAct);
    }

    [Fact]
    public void Scalar_transformer_depth_applies_to_cross_attention_levels_and_mid_block()
    {
        var c = UnetConfig.FromJson("""{"transformer_layers_per_block": 2}""", "x.json");
        Assert.Equal([2, 2, 2, 0], c.TransformerLayersPerBlock);
        Assert.Equal(2, c.MidBlockTransformerLayers);
        var heads = UnetConfig.FromJson("""{"num_attention_heads": [5, 10, 20, 20], "attention_head_dim": 64}""", "x.json");
        Assert.Equal([5, 10, 20, 20], heads.AttentionHeads);
    }

    [Theory]
    [InlineData("""{"attention_activation": "gelu"}""", "attention_activation")]
    [InlineData("""{"ff_activation": "relu"}""", "ff_activation")]
    [InlineData("""{"ff_mult": 0}""", "ff_mult")]
    [InlineData("""{"layers_per_block": [2, 2]}""", "layers_per_block")]
    [InlineData("""{"layers_per_block": 0}""", "layers_per_block")]
    [InlineData("""{"layers_per_block": 1.5}""", "layers_per_block")]
    [InlineData("""{"block_out_channels": [320, 650, 1280, 1280]}""", "block_out_channels")]
    [InlineData("""{"block_out_channels": []}""", "block_out_channels")]
    [InlineData("""{"attention_head_dim": 7}""", "attention_head_dim")]
    [InlineData("""{"transformer_layers_per_block": [1, 1, 1, 1]}""", "transformer_layers_per_block")]
    [InlineData("""{"down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "SimpleDownBlock2D"]}""", "down_block_types")]
    [InlineData("""{"up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}""", "up_block_types")]
    [InlineData("""{"class_embed_type": "timestep"}""", "class_embed_type")]
    [InlineData("""{"addition_embed_type": "text_time"}""", "addition_embed_type")]
    [InlineData("""{"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}""", "mid_block_type")]
    [InlineData("""{"only_cross_attention": [true, false, false, false]}""", "only_cross_attention")]
    [InlineData("""{"act_fn": "mish"}""", "act_fn")]
    [InlineData("""{"norm_eps": "small"}""", "norm_eps")]
    [InlineData("""{"self_attention_per_block": [true, false]}""", "self_attention_per_block")]
    [InlineData("""{"separable_conv_per_block": "yes"}""", "separable_conv_per_block")]
    [InlineData("""{"time_cond_proj_dim": 1}""", "time_cond_proj_dim")]
    [InlineData("""{"_class_name": "UNet2DModel"}""", "_class_name")]
    public void Bad_unet_values_name_the_key_and_the_file(string json, string key)
    {
        var e = Assert.Throws<ConfigException>(() => UnetConfig.FromJson(json, "models/x/unet/config.json"));
        Assert.Equal(key, e.Key);
        Assert.StartsWith("models/x/unet/config.json: ", e.Message);
        Assert.Contains($"'{key}'", e.Message);
    }

    [Theory]
    [InlineData("""{"latent_channels": 0}""", "latent_channels")]
    [InlineData("""{"block_out_channels": [128, 250]}""", "block_out_channels")]
    [InlineData("""{"down_block_types": ["DownEncoderBlock2D"]}""", "down_block_types")]
    [InlineData("""{"scaling_factor": -1}""", "scaling_factor")]
    [InlineData("""{"act_fn": "relu"}""", "act_fn")]
    public void Bad_vae_values_name_the_key(string json, string key)
        => Assert.Equal(key, Assert.Throws<ConfigException>(() => VaeConfig.FromJson(json, "vae/config.json")).Key);

    [Theory]
    [InlineData("""{"hidden_act": "relu"}""", "hidden_act")]
    [InlineData("""{"num_attention_heads": 5}""", "num_attention_heads")]
    [InlineData("""{"num_hidden_layers": 0}""", "num_hidden_layers")]
    [InlineData("""{"text_config": [1]}""", "text_config")]
    public void Bad_text_encoder_values_name_the_key(string json, string key)
        => Assert.Equal(key, Assert.Throws<ConfigException>(() => ClipTextConfig.FromJson(json, "text_encoder/config.json")).Key);

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("[1, 2]")]
    [InlineData("{\"a\": 1,}")]
    public void Malformed_json_is_a_config_error(string json)
    {
        var e = Assert.Throws<ConfigException>(() => UnetConfig.FromJson(json, "broken.json"));
        Assert.StartsWith("broken.json: ", e.Message);
        Assert.Null(e.Key);
    }

    [Fact]
    public void Full_clip_config_uses_its_text_config()
    {
        var c = ClipTextConfig.FromJson("""{"text_config": {"hidden_size": 64, "num_attention_heads": 4}, "vision_config": {}}""", "clip.json");
        Assert.Equal(64, c.HiddenSize);
        Assert.Equal(16, c.HeadDim);
    }
}
