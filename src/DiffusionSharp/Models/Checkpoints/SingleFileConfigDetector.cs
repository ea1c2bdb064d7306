using DiffusionSharp.Models.Configs;

namespace DiffusionSharp.Models.Checkpoints;

/// <summary>
/// The configs of an SD 1.x single-file checkpoint, read from its tensor shapes (diffusers keys, after
/// <see cref="LdmKeyMap"/>): widths, levels, resnets per level, transformer depth, cross-attention width, text encoder
/// width/depth/MLP size, VAE widths and latent channels. What shapes cannot tell (attention heads, group-norm
/// groups) comes from the SD 1.5 preset: 8 UNet heads, CLIP heads of 64 channels, 32 groups.
/// </summary>
public static class SingleFileConfigDetector
{
    public static UnetConfig DetectUnet(Func<string, long[]?> shape)
    {
        long[] convIn = Need(shape, "conv_in.weight");
        var channels = new List<int>();
        var layers = new List<int>();
        var depth = new List<int>();
        for (int level = 0; shape($"down_blocks.{level}.resnets.0.conv1.weight") is { } conv1; level++)
        {
            channels.Add((int)conv1[0]);
            int n = 0;
            while (shape($"down_blocks.{level}.resnets.{n}.conv1.weight") != null) n++;
            layers.Add(n);
            int d = 0;
            while (shape($"down_blocks.{level}.attentions.0.transformer_blocks.{d}.attn1.to_q.weight") != null) d++;
            depth.Add(d);
        }
        if (channels.Count == 0) throw new InvalidDataException("No UNet down blocks found (down_blocks.0.resnets.0.conv1.weight).");
        int midDepth = 0;
        while (shape($"mid_block.attentions.0.transformer_blocks.{midDepth}.attn1.to_q.weight") != null) midDepth++;
        int context = shape("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight") is { } toK ? (int)toK[1]
            : shape("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight") is { } midK ? (int)midK[1] : 768;
        bool linearProjection = (shape("mid_block.attentions.0.proj_in.weight")?.Length ?? 4) == 2;
        var sd = UnetConfig.Sd15;
        return sd with
        {
            InChannels = (int)convIn[1],
            OutChannels = (int)Need(shape, "conv_out.weight")[0],
            BlockOutChannels = ValueList.Create<int>(channels.ToArray()),
            LayersPerBlock = ValueList.Create<int>(layers.ToArray()),
            TransformerLayersPerBlock = ValueList.Create<int>(depth.ToArray()),
            MidBlockTransformerLayers = midDepth,
            DownBlockTypes = ValueList.Create<string>(depth.Select(d => d > 0 ? UnetConfig.CrossAttnDownBlock2D : UnetConfig.DownBlock2D).ToArray()),
            UpBlockTypes = ValueList.Create<string>(depth.AsEnumerable().Reverse().Select(d => d > 0 ? UnetConfig.CrossAttnUpBlock2D : UnetConfig.UpBlock2D).ToArray()),
            AttentionHeads = ValueList.Repeat(sd.AttentionHeads[0], channels.Count),
            SelfAttentionPerBlock = ValueList.Repeat(true, channels.Count),
            SeparableConvPerBlock = ValueList.Repeat(false, channels.Count),
            CrossAttentionDim = context,
            UseLinearProjection = linearProjection,
        };
    }

    public static ClipTextConfig DetectTextEncoder(Func<string, long[]?> shape)
    {
        long[] tokens = Need(shape, "text_model.embeddings.token_embedding.weight");
        int layers = 0;
        while (shape($"text_model.encoder.layers.{layers}.self_attn.q_proj.weight") != null) layers++;
        int hidden = (int)tokens[1];
        return ClipTextConfig.Sd15 with
        {
            VocabSize = (int)tokens[0],
            HiddenSize = hidden,
            NumHiddenLayers = layers,
            NumAttentionHeads = Math.Max(1, hidden / 64),
            IntermediateSize = (int)Need(shape, "text_model.encoder.layers.0.mlp.fc1.weight")[0],
            MaxPositionEmbeddings = (int)Need(shape, "text_model.embeddings.position_embedding.weight")[0],
            ProjectionDim = hidden,
        };
    }

    public static VaeConfig DetectVae(Func<string, long[]?> shape)
    {
        var channels = new List<int>();
        for (int level = 0; shape($"encoder.down_blocks.{level}.resnets.0.conv1.weight") is { } conv1; level++) channels.Add((int)conv1[0]);
        if (channels.Count == 0) throw new InvalidDataException("No VAE encoder blocks found (encoder.down_blocks.0.resnets.0.conv1.weight).");
        int layers = 0;
        while (shape($"encoder.down_blocks.0.resnets.{layers}.conv1.weight") != null) layers++;
        return VaeConfig.Sd15 with
        {
            BlockOutChannels = ValueList.Create<int>(channels.ToArray()),
            LayersPerBlock = layers,
            LatentChannels = (int)Need(shape, "post_quant_conv.weight")[0],
            InChannels = (int)Need(shape, "encoder.conv_in.weight")[1],
            OutChannels = (int)Need(shape, "decoder.conv_out.weight")[0],
        };
    }

    private static long[] Need(Func<string, long[]?> shape, string key)
        => shape(key) ?? throw new InvalidDataException($"The checkpoint has no '{key}', which every SD 1.x checkpoint has.");
}
