using System.Text.RegularExpressions;

namespace DiffusionSharp.Models.Checkpoints;

/// <summary>Where one tensor of an original-layout checkpoint goes: a component and its diffusers key.</summary>
/// <param name="SqueezeTrailingOnes">The LDM tensor is a 1x1 convolution [C, C, 1, 1] that diffusers stores as a
/// linear weight [C, C] (the VAE's mid-block attention projections).</param>
public readonly record struct MappedKey(ModelComponent Component, string DiffusersKey, bool SqueezeTrailingOnes = false);

/// <summary>
/// Renames the keys of an original single-file Stable Diffusion checkpoint (CompVis/LDM layout:
/// <c>model.diffusion_model.*</c>, <c>first_stage_model.*</c>, <c>cond_stage_model.transformer.*</c>) to the keys of
/// the diffusers classes the engine binds, the same renaming diffusers' single-file loader performs.
/// The UNet's block numbering is derived from the keys present (levels, resnets per level, where the attentions
/// and resamplers are), so any UNet of the SD 1.x/2.x family shape maps, whatever its widths.
/// </summary>
public static partial class LdmKeyMap
{
    public const string UnetPrefix = "model.diffusion_model.";
    public const string VaePrefix = "first_stage_model.";
    public const string TextPrefix = "cond_stage_model.transformer.";

    /// <summary>
    /// Maps every key it recognises; keys it deliberately drops (EMA copies, schedule buffers, position ids) and
    /// keys it does not know are returned separately so a loader can report them.
    /// </summary>
    public static LdmMapping Build(IEnumerable<string> keys)
    {
        var all = keys.ToList();
        var mapped = new Dictionary<string, MappedKey>(StringComparer.Ordinal);
        var ignored = new List<string>();
        var unknown = new List<string>();
        var unet = UnetLayout.From(all.Where(k => k.StartsWith(UnetPrefix, StringComparison.Ordinal))
                                      .Select(k => k[UnetPrefix.Length..]));
        int vaeUpLevels = all.Where(k => k.StartsWith(VaePrefix + "decoder.up.", StringComparison.Ordinal))
                             .Select(k => int.Parse(k.Split('.')[3])).DefaultIfEmpty(-1).Max() + 1;
        foreach (string key in all)
        {
            MappedKey? m = null;
            if (key.StartsWith(UnetPrefix, StringComparison.Ordinal))
                m = MapUnet(key[UnetPrefix.Length..], unet) is { } u ? new MappedKey(ModelComponent.Unet, u) : null;
            else if (key.StartsWith(VaePrefix, StringComparison.Ordinal))
                m = MapVae(key[VaePrefix.Length..], vaeUpLevels);
            else if (key.StartsWith(TextPrefix, StringComparison.Ordinal))
            {
                string rest = key[TextPrefix.Length..];
                if (rest.EndsWith("position_ids", StringComparison.Ordinal)) { ignored.Add(key); continue; }
                m = new MappedKey(ModelComponent.TextEncoder, rest.StartsWith("text_model.", StringComparison.Ordinal) ? rest : "text_model." + rest);
            }
            else if (IsIgnorable(key)) { ignored.Add(key); continue; }

            if (m is { } found) mapped[key] = found;
            else unknown.Add(key);
        }
        return new LdmMapping(mapped, ignored, unknown);
    }

    /// <summary>Training leftovers found in original checkpoints that inference never reads.</summary>
    private static bool IsIgnorable(string key) =>
        key.StartsWith("model_ema.", StringComparison.Ordinal) ||
        key is "betas" or "alphas_cumprod" or "alphas_cumprod_prev" or "sqrt_alphas_cumprod"
            or "sqrt_one_minus_alphas_cumprod" or "log_one_minus_alphas_cumprod" or "sqrt_recip_alphas_cumprod"
            or "sqrt_recipm1_alphas_cumprod" or "posterior_variance" or "posterior_log_variance_clipped"
            or "posterior_mean_coef1" or "posterior_mean_coef2" or "logvar";

    // ---------------------------------------------------------------------------------------------- UNet

    /// <summary>What the input/output block numbering of an LDM UNet means, read off its keys.</summary>
    internal sealed record UnetLayout(int LayersPerBlock, int Levels)
    {
        public static UnetLayout From(IEnumerable<string> unetKeys)
        {
            var inputBlocks = new HashSet<int>();
            int downsamplers = 0;
            var seenOps = new HashSet<int>();
            foreach (string k in unetKeys)
            {
                var m = InputBlock().Match(k);
                if (!m.Success) continue;
                int i = int.Parse(m.Groups[1].Value);
                inputBlocks.Add(i);
                if (m.Groups[2].Value == "0" && k.Contains(".0.op.", StringComparison.Ordinal) && seenOps.Add(i)) downsamplers++;
            }
            int levels = downsamplers + 1;
            // input_blocks = conv_in + levels * layers + (levels - 1) downsamplers = levels * (layers + 1)
            int layers = inputBlocks.Count == 0 ? 0 : inputBlocks.Count / levels - 1;
            return new UnetLayout(Math.Max(layers, 1), levels);
        }
    }

    [GeneratedRegex(@"^input_blocks\.(\d+)\.(\d+)\.")]
    private static partial Regex InputBlock();

    [GeneratedRegex(@"^(input_blocks|output_blocks)\.(\d+)\.(\d+)\.(.+)$")]
    private static partial Regex UnetBlock();

    [GeneratedRegex(@"^middle_block\.(\d+)\.(.+)$")]
    private static partial Regex MiddleBlock();

    private static string? MapUnet(string k, UnetLayout layout)
    {
        switch (k)
        {
            case "time_embed.0.weight": return "time_embedding.linear_1.weight";
            case "time_embed.0.bias": return "time_embedding.linear_1.bias";
            case "time_embed.2.weight": return "time_embedding.linear_2.weight";
            case "time_embed.2.bias": return "time_embedding.linear_2.bias";
            case "out.0.weight": return "conv_norm_out.weight";
            case "out.0.bias": return "conv_norm_out.bias";
            case "out.2.weight": return "conv_out.weight";
            case "out.2.bias": return "conv_out.bias";
        }
        var mid = MiddleBlock().Match(k);
        if (mid.Success)
        {
            string rest = mid.Groups[2].Value;
            return mid.Groups[1].Value switch
            {
                "0" => "mid_block.resnets.0." + ResnetRename(rest),
                "1" => "mid_block.attentions.0." + rest,
                "2" => "mid_block.resnets.1." + ResnetRename(rest),
                _ => null,
            };
        }
        var m = UnetBlock().Match(k);
        if (!m.Success) return null;
        int i = int.Parse(m.Groups[2].Value), sub = int.Parse(m.Groups[3].Value);
        string tail = m.Groups[4].Value;
        int per = layout.LayersPerBlock + 1;
        if (m.Groups[1].Value == "input_blocks")
        {
            if (i == 0) return sub == 0 ? "conv_in." + tail : null;
            int level = (i - 1) / per, j = (i - 1) % per;
            if (j == layout.LayersPerBlock)
                return sub == 0 && tail.StartsWith("op.", StringComparison.Ordinal) ? $"down_blocks.{level}.downsamplers.0.conv.{tail[3..]}" : null;
            return sub switch
            {
                0 => $"down_blocks.{level}.resnets.{j}.{ResnetRename(tail)}",
                1 => $"down_blocks.{level}.attentions.{j}.{tail}",
                _ => null,
            };
        }
        else
        {
            int level = i / per, j = i % per;
            if (sub == 0) return $"up_blocks.{level}.resnets.{j}.{ResnetRename(tail)}";
            // An upsampler holds only conv.weight / conv.bias; an attention holds norm, proj_in, ...
            if (tail.StartsWith("conv.", StringComparison.Ordinal)) return $"up_blocks.{level}.upsamplers.0.{tail}";
            return sub == 1 ? $"up_blocks.{level}.attentions.{j}.{tail}" : null;
        }
    }

    private static string ResnetRename(string tail)
    {
        int dot = tail.IndexOf('.');
        string head = dot < 0 ? tail : tail[..dot];
        string param = dot < 0 ? "" : tail[dot..];
        if (head == "skip_connection") return "conv_shortcut" + param;
        if (head is "in_layers" or "emb_layers" or "out_layers")
        {
            int dot2 = param.IndexOf('.', 1);
            string index = param[1..dot2];
            string p = param[dot2..];
            string? name = (head, index) switch
            {
                ("in_layers", "0") => "norm1",
                ("in_layers", "2") => "conv1",
                ("emb_layers", "1") => "time_emb_proj",
                ("out_layers", "0") => "norm2",
                ("out_layers", "3") => "conv2",
                _ => null,
            };
            return name is null ? tail : name + p;
        }
        return tail;
    }

    // ----------------------------------------------------------------------------------------------- VAE

    [GeneratedRegex(@"^(encoder|decoder)\.(down|up)\.(\d+)\.(block|downsample|upsample)\.(?:(\d+)\.)?(.+)$")]
    private static partial Regex VaeLevel();

    private static MappedKey? MapVae(string k, int upLevels)
    {
        MappedKey Vae(string key, bool squeeze = false) => new(ModelComponent.Vae, key, squeeze);
        if (k.StartsWith("quant_conv.", StringComparison.Ordinal) || k.StartsWith("post_quant_conv.", StringComparison.Ordinal)) return Vae(k);
        foreach (string side in new[] { "encoder.", "decoder." })
        {
            if (!k.StartsWith(side, StringComparison.Ordinal)) continue;
            string rest = k[side.Length..];
            if (rest.StartsWith("conv_in.", StringComparison.Ordinal) || rest.StartsWith("conv_out.", StringComparison.Ordinal)) return Vae(k);
            if (rest.StartsWith("norm_out.", StringComparison.Ordinal)) return Vae(side + "conv_norm_out." + rest["norm_out.".Length..]);
            if (rest.StartsWith("mid.block_1.", StringComparison.Ordinal)) return Vae(side + "mid_block.resnets.0." + VaeResnetRename(rest["mid.block_1.".Length..]));
            if (rest.StartsWith("mid.block_2.", StringComparison.Ordinal)) return Vae(side + "mid_block.resnets.1." + VaeResnetRename(rest["mid.block_2.".Length..]));
            if (rest.StartsWith("mid.attn_1.", StringComparison.Ordinal))
            {
                string a = rest["mid.attn_1.".Length..];
                int dot = a.IndexOf('.');
                string module = a[..dot], param = a[dot..];
                string? name = module switch { "norm" => "group_norm", "q" => "to_q", "k" => "to_k", "v" => "to_v", "proj_out" => "to_out.0", _ => null };
                if (name is null) return null;
                return Vae(side + "mid_block.attentions.0." + name + param, squeeze: module != "norm" && param == ".weight");
            }
        }
        var m = VaeLevel().Match(k);
        if (!m.Success) return null;
        string part = m.Groups[1].Value;
        int level = int.Parse(m.Groups[3].Value);
        if (part == "decoder") level = upLevels - 1 - level;
        string blocks = part == "encoder" ? "down_blocks" : "up_blocks";
        string tail = m.Groups[6].Value;
        return m.Groups[4].Value switch
        {
            "block" when m.Groups[5].Success => Vae($"{part}.{blocks}.{level}.resnets.{m.Groups[5].Value}.{VaeResnetRename(tail)}"),
            "downsample" when part == "encoder" => Vae($"{part}.{blocks}.{level}.downsamplers.0.{tail}"),
            "upsample" when part == "decoder" => Vae($"{part}.{blocks}.{level}.upsamplers.0.{tail}"),
            _ => null,
        };
    }

    private static string VaeResnetRename(string tail)
        => tail.StartsWith("nin_shortcut.", StringComparison.Ordinal) ? "conv_shortcut." + tail["nin_shortcut.".Length..] : tail;
}

/// <summary>The outcome of <see cref="LdmKeyMap.Build"/>.</summary>
public sealed record LdmMapping(
    IReadOnlyDictionary<string, MappedKey> Mapped,
    IReadOnlyList<string> Ignored,
    IReadOnlyList<string> Unknown);
