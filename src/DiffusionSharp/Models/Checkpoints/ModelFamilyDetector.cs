namespace DiffusionSharp.Models.Checkpoints;

/// <summary>
/// Recognises a single-file checkpoint's family from its key names and a few shapes, in the order diffusers'
/// <c>infer_diffusers_model_type</c> uses (research/formats.md "Detection by key presence and shape").
/// </summary>
public static class ModelFamilyDetector
{
    public static ModelFamilyInfo Detect(IReadOnlyDictionary<string, long[]> shapes)
    {
        const string unet = LdmKeyMap.UnetPrefix;
        int inChannels = shapes.TryGetValue(unet + "input_blocks.0.0.weight", out var convIn) && convIn.Length == 4 ? (int)convIn[1] : 0;

        if (shapes.ContainsKey("conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"))
            return new(ModelFamily.StableDiffusionXL, inChannels, "has conditioner.embedders.1.model.* (OpenCLIP bigG text encoder)");
        if (shapes.ContainsKey("conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"))
            return new(ModelFamily.StableDiffusionXLRefiner, inChannels, "has conditioner.embedders.0.model.* and no second embedder");
        if (shapes.Keys.Any(k => k.StartsWith(unet + "joint_blocks.", StringComparison.Ordinal)))
            return new(ModelFamily.StableDiffusion3, inChannels, "has model.diffusion_model.joint_blocks.* (MMDiT)");
        if (shapes.Keys.Any(k => k.StartsWith("double_blocks.", StringComparison.Ordinal) || k.StartsWith(unet + "double_blocks.", StringComparison.Ordinal)))
            return new(ModelFamily.Flux, inChannels, "has double_blocks.* (FLUX transformer)");

        const string crossKey = unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
        if (shapes.TryGetValue(crossKey, out var toK) && toK.Length == 2)
        {
            long context = toK[1];
            if (context == 1024 || shapes.ContainsKey("cond_stage_model.model.token_embedding.weight"))
                return new(ModelFamily.StableDiffusion2, inChannels, $"cross-attention context {context} ({crossKey}), OpenCLIP text encoder");
            if (shapes.ContainsKey(LdmKeyMap.TextPrefix + "text_model.embeddings.token_embedding.weight") ||
                shapes.ContainsKey(LdmKeyMap.TextPrefix + "embeddings.token_embedding.weight"))
                return new(ModelFamily.StableDiffusion1, inChannels, $"CLIP ViT-L text encoder keys, cross-attention context {context}");
            return new(ModelFamily.Unknown, inChannels, $"an SD-style UNet (context {context}) without a recognised text encoder");
        }
        if (shapes.ContainsKey("cond_stage_model.model.token_embedding.weight"))
            return new(ModelFamily.StableDiffusion2, inChannels, "OpenCLIP text encoder keys (cond_stage_model.model.*)");

        var prefixes = shapes.Keys.Select(k => k.Split('.')[0]).Distinct().OrderBy(p => p, StringComparer.Ordinal).Take(8);
        return new(ModelFamily.Unknown, inChannels,
            $"no Stable Diffusion UNet keys; {shapes.Count} tensors under: {string.Join(", ", prefixes)}");
    }
}
