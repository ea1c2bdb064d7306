using DiffusionSharp.Kernels.Elementwise;

namespace DiffusionSharp.Models.Configs;

/// <summary>
/// Configuration of <see cref="Clip.ClipTextModel"/>: transformers' <c>CLIPTextConfig</c> (the text tower of CLIP).
/// Defaults are <see cref="Sd15"/>.
/// </summary>
public sealed record ClipTextConfig
{
    /// <summary>CLIP ViT-L/14's text tower as Stable Diffusion 1.5 ships it (runwayml/stable-diffusion-v1-5
    /// <c>text_encoder/config.json</c>: vocab_size 49408, hidden_size 768, intermediate_size 3072, 12 layers, 12 heads,
    /// max_position_embeddings 77, hidden_act quick_gelu, layer_norm_eps 1e-5, projection_dim 768,
    /// pad/bos/eos token ids 1/0/2 as that file has them; the engine does not use them).</summary>
    public static ClipTextConfig Sd15 { get; } = new();

    public int VocabSize { get; init; } = 49408;
    public int HiddenSize { get; init; } = 768;
    public int IntermediateSize { get; init; } = 3072;
    public int ProjectionDim { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int MaxPositionEmbeddings { get; init; } = 77;
    /// <summary><c>hidden_act</c>: "quick_gelu" (CLIP ViT-L/14) or "gelu".</summary>
    public ActivationKind HiddenAct { get; init; } = ActivationKind.QuickGelu;
    public float LayerNormEps { get; init; } = 1e-5f;
    public int PadTokenId { get; init; } = 1;
    public int BosTokenId { get; init; }
    public int EosTokenId { get; init; } = 2;

    public int HeadDim => HiddenSize / NumAttentionHeads;

    public ClipTextConfig Validate(string source = nameof(ClipTextConfig))
    {
        void Require(bool ok, string key, string message)
        {
            if (!ok) throw new ConfigException(source, key, message);
        }

        Require(VocabSize >= 1, "vocab_size", "must be >= 1");
        Require(HiddenSize >= 1, "hidden_size", "must be >= 1");
        Require(IntermediateSize >= 1, "intermediate_size", "must be >= 1");
        Require(NumHiddenLayers >= 1, "num_hidden_layers", "must be >= 1");
        Require(NumAttentionHeads >= 1 && HiddenSize % NumAttentionHeads == 0, "num_attention_heads",
            $"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        Require(MaxPositionEmbeddings >= 1, "max_position_embeddings", "must be >= 1");
        Require(HiddenAct is ActivationKind.QuickGelu or ActivationKind.Gelu, "hidden_act", "must be 'quick_gelu' or 'gelu'");
        Require(LayerNormEps > 0 && float.IsFinite(LayerNormEps), "layer_norm_eps", "must be a positive number");
        return this;
    }

    /// <summary>Reads a transformers <c>text_encoder/config.json</c> (a CLIPTextConfig, or a full CLIPConfig whose
    /// <c>text_config</c> is used). Unknown keys are ignored.</summary>
    public static ClipTextConfig FromJson(string json, string sourceName)
    {
        var root = ConfigJsonReader.Parse(json, sourceName);
        var r = root.Nested("text_config") ?? root;
        var d = Sd15;
        var config = new ClipTextConfig
        {
            VocabSize = r.Int("vocab_size", d.VocabSize),
            HiddenSize = r.Int("hidden_size", d.HiddenSize),
            IntermediateSize = r.Int("intermediate_size", d.IntermediateSize),
            ProjectionDim = r.Int("projection_dim", d.ProjectionDim),
            NumHiddenLayers = r.Int("num_hidden_layers", d.NumHiddenLayers),
            NumAttentionHeads = r.Int("num_attention_heads", d.NumAttentionHeads),
            MaxPositionEmbeddings = r.Int("max_position_embeddings", d.MaxPositionEmbeddings),
            HiddenAct = r.String("hidden_act", "quick_gelu") switch
            {
                "quick_gelu" => ActivationKind.QuickGelu,
                "gelu" => ActivationKind.Gelu,
                var other => throw r.Error("hidden_act", $"must be 'quick_gelu' or 'gelu', got '{other}'"),
            },
            LayerNormEps = (float)r.Double("layer_norm_eps", d.LayerNormEps),
            PadTokenId = r.Int("pad_token_id", d.PadTokenId),
            BosTokenId = r.Int("bos_token_id", d.BosTokenId),
            EosTokenId = r.Int("eos_token_id", d.EosTokenId),
        };
        return config.Validate(sourceName);
    }

    public string ToJson()
    {
        Validate();
        using var w = new ConfigJsonWriter("", "transformers_version", "4.40.0");
        return w.Write("architectures", new[] { "CLIPTextModel" })
            .Write("model_type", "clip_text_model")
            .Write("vocab_size", VocabSize)
            .Write("hidden_size", HiddenSize)
            .Write("intermediate_size", IntermediateSize)
            .Write("projection_dim", ProjectionDim)
            .Write("num_hidden_layers", NumHiddenLayers)
            .Write("num_attention_heads", NumAttentionHeads)
            .Write("max_position_embeddings", MaxPositionEmbeddings)
            .Write("hidden_act", HiddenAct == ActivationKind.Gelu ? "gelu" : "quick_gelu")
            .Write("layer_norm_eps", LayerNormEps)
            .Write("pad_token_id", PadTokenId)
            .Write("bos_token_id", BosTokenId)
            .Write("eos_token_id", EosTokenId)
            .Finish();
    }
}
