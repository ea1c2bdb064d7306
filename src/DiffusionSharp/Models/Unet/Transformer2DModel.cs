using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>Transformer2DModel</c> (continuous input): GroupNorm (eps 1e-6) -> <c>proj_in</c> -> transformer blocks
/// -> <c>proj_out</c> -> + input. Keys <c>norm</c>, <c>proj_in</c>, <c>transformer_blocks.{i}</c>, <c>proj_out</c>.
/// proj_in/proj_out are 1x1 convolutions [C, C, 1, 1] (SD 1.x) or Linear [C, C] (<c>use_linear_projection</c>); on
/// channels-last tensors both are the same GEMM, and the pixels of [B, H, W, C] are already the tokens [B, H*W, C].
/// </summary>
public sealed unsafe class Transformer2DModel : Module
{
    private const float NormEps = 1e-6f;

    private readonly GroupNorm _norm;
    private readonly Linear _projIn;
    private readonly BasicTransformerBlock[] _blocks;
    private readonly Linear _projOut;

    public int Channels { get; }
    public IReadOnlyList<BasicTransformerBlock> TransformerBlocks => _blocks;
    /// <summary>The checkpoint key prefix the transformer was bound under (<c>down_blocks.1.attentions.0</c>).</summary>
    public string Key { get; }

    private Transformer2DModel(WeightScope scope, UnetConfig config, int channels, int heads, int layers, bool selfAttention)
    {
        Key = scope.Prefix.TrimEnd('.');
        Channels = channels;
        try
        {
            _norm = Add(GroupNorm.Load(scope.Push("norm"), config.NormNumGroups, channels, NormEps));
            _projIn = Add(config.UseLinearProjection
                ? Linear.Load(scope.Push("proj_in"), channels, channels)
                : Linear.LoadPointwiseConv(scope.Push("proj_in"), channels, channels));
            var blocksScope = scope.Push("transformer_blocks");
            _blocks = new BasicTransformerBlock[layers];
            for (int i = 0; i < layers; i++)
                _blocks[i] = Add(BasicTransformerBlock.Load(blocksScope.Push(i), config, channels, heads, selfAttention));
            _projOut = Add(config.UseLinearProjection
                ? Linear.Load(scope.Push("proj_out"), channels, channels)
                : Linear.LoadPointwiseConv(scope.Push("proj_out"), channels, channels));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>A transformer over <paramref name="channels"/> with <paramref name="heads"/> heads and
    /// <paramref name="layers"/> blocks, the other settings from <paramref name="config"/>.</summary>
    public static Transformer2DModel Load(WeightScope scope, UnetConfig config, int channels, int heads, int layers, bool selfAttention)
        => new(scope, config, channels, heads, layers, selfAttention);

    /// <summary>hiddenStates [B, H, W, C], encoderHiddenStates [B, Tctx, Cctx] -> [B, H, W, C], a new tensor.</summary>
    public Tensor Forward(Tensor hiddenStates, Tensor encoderHiddenStates)
    {
        var output = Tensor.Create(hiddenStates.Shape); // [B, H, W, C]
        try
        {
            Forward(hiddenStates, encoderHiddenStates, output);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        return output;
    }

    /// <summary>
    /// output = transformer(hiddenStates) + hiddenStates; <paramref name="output"/> may be <paramref name="hiddenStates"/>.
    /// With a <paramref name="hook"/> the transformer may instead be skipped, the hook writing hiddenStates + a residual
    /// of its own (<see cref="IBlockHook"/>); when it runs, the result is bit for bit the plain transformer's.
    /// </summary>
    public void Forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor output, IBlockHook? hook = null)
    {
        if (hiddenStates.Rank != 4 || hiddenStates.Shape[3] != Channels)
            throw new ArgumentException($"Transformer2DModel: input {hiddenStates} must be [B, H, W, {Channels}].", nameof(hiddenStates));
        if (!output.ShapeEquals(hiddenStates.Shape))
            throw new ArgumentException($"Transformer2DModel: output {output} does not match input {hiddenStates}.", nameof(output));
        var action = hook?.Begin(this) ?? BlockAction.Compute;
        if (action == BlockAction.Reuse)
        {
            hook!.Reuse(this, hiddenStates, output); // [B, H, W, C]
            return;
        }
        // Recording in place needs the input after it is overwritten.
        using var input = action == BlockAction.Record && output.Data == hiddenStates.Data ? hiddenStates.Clone() : null; // [B, H, W, C]
        int b = hiddenStates.Shape[0], tokens = hiddenStates.Shape[1] * hiddenStates.Shape[2];
        using (var normed = _norm.Forward(hiddenStates)) // [B, H, W, C]
        using (var sequence = Tensor.Create(b, tokens, Channels)) // [B, H*W, C]
        {
            using (var normedTokens = normed.Reshape(b, tokens, Channels)) // [B, H*W, C] view
                _projIn.Forward(normedTokens, sequence); // [B, H*W, C]
            foreach (var block in _blocks) block.Forward(sequence, encoderHiddenStates); // [B, H*W, C]
            using var outputTokens = output.Reshape(b, tokens, Channels); // [B, H*W, C] view
            using var residualTokens = hiddenStates.Reshape(b, tokens, Channels); // [B, H*W, C] view
            _projOut.Forward(sequence, outputTokens, residualTokens); // [B, H*W, C]
        }
        if (action == BlockAction.Record) hook!.Record(this, input ?? hiddenStates, output);
    }

    public long MultiplyAccumulates(int height, int width, int contextTokens)
    {
        int tokens = height * width;
        long macs = _projIn.MultiplyAccumulates(tokens) + _projOut.MultiplyAccumulates(tokens);
        foreach (var block in _blocks) macs += block.MultiplyAccumulates(tokens, contextTokens);
        return macs;
    }
}
