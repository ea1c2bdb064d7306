using DiffusionSharp.Nn;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// One block an <see cref="IBlockHook"/> sees: a <see cref="ResnetBlock2D"/> or <see cref="Transformer2DModel"/> of the
/// UNet, at position <see cref="Index"/> of <see cref="Unet2DConditionModel.HookedBlocks"/> (execution order).
/// <see cref="SizeIndex"/>: which level size it runs at (0 = the latent's, one more per downsampling).
/// </summary>
public sealed record HookedBlock(int Index, Module Module, int SizeIndex)
{
    /// <summary>The checkpoint key prefix (<c>up_blocks.1.attentions.2</c>), which names the block in schedule files.</summary>
    public string Key => Module switch
    {
        ResnetBlock2D resnet => resnet.Key,
        Transformer2DModel transformer => transformer.Key,
        _ => throw new InvalidOperationException($"Unexpected hooked block {Module.GetType().Name}."),
    };

    /// <summary>Channels of the block's output (and of its residual contribution).</summary>
    public int Channels => Module switch
    {
        ResnetBlock2D resnet => resnet.OutChannels,
        Transformer2DModel transformer => transformer.Channels,
        _ => throw new InvalidOperationException($"Unexpected hooked block {Module.GetType().Name}."),
    };

    public bool IsTransformer => Module is Transformer2DModel;

    /// <summary>The hooked modules of a down or up block in execution order: each resnet, then the module (if any) that
    /// runs after it.</summary>
    internal static IReadOnlyList<Module> InOrder(IReadOnlyList<ResnetBlock2D> resnets, Func<int, Module?> afterResnet)
    {
        var blocks = new List<Module>();
        for (int j = 0; j < resnets.Count; j++)
        {
            blocks.Add(resnets[j]);
            if (afterResnet(j) is { } after) blocks.Add(after);
        }
        return blocks;
    }
}
