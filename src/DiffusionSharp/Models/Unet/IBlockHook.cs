using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>What a hooked block does in one UNet forward; <see cref="IBlockHook.Begin"/> decides.</summary>
public enum BlockAction
{
    /// <summary>Run the block; the hook does not look at it.</summary>
    Compute,
    /// <summary>Run the block and show its residual contribution to <see cref="IBlockHook.Record"/>.</summary>
    Record,
    /// <summary>Skip the block: <see cref="IBlockHook.Reuse"/> writes its output.</summary>
    Reuse,
}

/// <summary>
/// A hook at every ResNet and transformer block of a <see cref="Unet2DConditionModel"/> (its
/// <see cref="Unet2DConditionModel.HookedBlocks"/>), called in execution order during a forward. A block's residual
/// contribution is its output minus its skip input: the input itself for a transformer and for a resnet whose channels
/// do not change, <c>conv_shortcut(input)</c> for one whose channels do. Block caching records it on some steps and adds
/// it back instead of running the block on others. Passed to <see cref="Unet2DConditionModel.Forward"/>, so one loaded
/// model can serve several hooks at once.
/// </summary>
public interface IBlockHook
{
    /// <summary>Called before <paramref name="block"/> (a <see cref="ResnetBlock2D"/> or <see cref="Transformer2DModel"/>) runs.</summary>
    BlockAction Begin(Module block);

    /// <summary>The block ran: <paramref name="output"/> = <paramref name="skip"/> + its residual contribution, both
    /// [B, H, W, C]. Neither may be kept: copy what is needed.</summary>
    void Record(Module block, Tensor skip, Tensor output);

    /// <summary>The block is skipped: write <paramref name="output"/> = <paramref name="skip"/> + the residual that
    /// stands in for it, both [B, H, W, C]; <paramref name="output"/> may be <paramref name="skip"/> itself.</summary>
    void Reuse(Module block, Tensor skip, Tensor output);
}
