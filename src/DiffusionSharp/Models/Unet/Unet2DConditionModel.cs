using System.Buffers;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Unet;

/// <summary>
/// diffusers <c>UNet2DConditionModel</c> for Stable Diffusion 1.x and the MobileDiffusion-style options of
/// <see cref="UnetConfig"/>: predicts the noise (or v) of a latent at given timesteps, conditioned on text states.
/// Channels-last: sample [B, H, W, Cin] -> [B, H, W, Cout]. Keys <c>conv_in</c>, <c>time_embedding</c>,
/// <c>down_blocks.{i}</c>, <c>mid_block</c>, <c>up_blocks.{i}</c>, <c>conv_norm_out</c>, <c>conv_out</c>.
/// Any latent size works: downsampling rounds up and each upsampler resizes to the size of the skip it meets.
/// </summary>
public sealed unsafe class Unet2DConditionModel : Module
{
    private readonly Conv2d _convIn;
    private readonly Timesteps _timeProj;
    private readonly TimestepEmbedding _timeEmbedding;
    private readonly DownBlock2D[] _downBlocks;
    private readonly UNetMidBlock2DCrossAttn _midBlock;
    private readonly UpBlock2D[] _upBlocks;
    private readonly GroupNorm _convNormOut;
    private readonly Conv2d _convOut;
    private readonly HookedBlock[] _hookedBlocks;
    private readonly int _skipCount;

    public UnetConfig Config { get; }
    public IReadOnlyList<DownBlock2D> DownBlocks => _downBlocks;
    public UNetMidBlock2DCrossAttn MidBlock => _midBlock;
    public IReadOnlyList<UpBlock2D> UpBlocks => _upBlocks;

    /// <summary>
    /// The activation arena of <see cref="Forward"/>: every tensor of a step, the output included, comes from it, so that
    /// from the second step at a resolution a step allocates no managed memory and no native buffer. It is sized by the
    /// first step at a resolution, dropped when the resolution changes and freed with the model.
    /// </summary>
    public TensorPool ActivationPool { get; } = new();

    /// <summary>Every ResNet and transformer block, in execution order: what an <see cref="IBlockHook"/> sees.</summary>
    public IReadOnlyList<HookedBlock> HookedBlocks => _hookedBlocks;

    private Unet2DConditionModel(WeightScope scope, UnetConfig config)
    {
        Config = config;
        var channels = config.BlockOutChannels;
        int levels = config.Levels;
        try
        {
            _convIn = Add(Conv2d.Load(scope.Push("conv_in"), config.InChannels, channels[0], kernelSize: 3, padding: 1));
            _timeProj = new Timesteps(channels[0], config.FlipSinToCos, config.FreqShift);
            _timeEmbedding = Add(TimestepEmbedding.Load(scope.Push("time_embedding"), channels[0], config.TimeEmbedDim, config.TimeCondProjDim));

            var downScope = scope.Push("down_blocks");
            _downBlocks = new DownBlock2D[levels];
            for (int i = 0; i < levels; i++)
                _downBlocks[i] = Add(GetDownBlock(downScope.Push(i), config, i, inChannels: i == 0 ? channels[0] : channels[i - 1], addDownsample: i < levels - 1));

            _midBlock = Add(UNetMidBlock2DCrossAttn.Load(scope.Push("mid_block"), config));

            var upScope = scope.Push("up_blocks");
            _upBlocks = new UpBlock2D[levels];
            for (int i = 0; i < levels; i++)
            {
                int level = levels - 1 - i;
                _upBlocks[i] = Add(GetUpBlock(upScope.Push(i), config, level,
                    inChannels: channels[Math.Max(level - 1, 0)], prevOutputChannels: channels[Math.Min(level + 1, levels - 1)], addUpsample: i < levels - 1));
            }

            _convNormOut = Add(GroupNorm.Load(scope.Push("conv_norm_out"), config.NormNumGroups, channels[0], config.NormEps));
            _convOut = Add(Conv2d.Load(scope.Push("conv_out"), channels[0], config.OutChannels, kernelSize: 3, padding: 1));
            _hookedBlocks = ListHookedBlocks();
            _skipCount = 1 + _downBlocks.Sum(b => b.OutputCount);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Binds every weight under <paramref name="scope"/> (diffusers key names) for <paramref name="config"/>.
    /// A missing or misshapen tensor throws <see cref="WeightException"/> naming its full key and file.</summary>
    public static Unet2DConditionModel Load(WeightScope scope, UnetConfig config)
        => new(scope, config.Validate());

    /// <summary>The hooked blocks of the down path, the mid block and the up path, each with the level size it runs at.</summary>
    private HookedBlock[] ListHookedBlocks()
    {
        var blocks = new List<HookedBlock>();
        void AddAll(IEnumerable<Module> modules, int sizeIndex)
        {
            foreach (var module in modules) blocks.Add(new HookedBlock(blocks.Count, module, sizeIndex));
        }
        for (int i = 0; i < _downBlocks.Length; i++) AddAll(_downBlocks[i].Blocks, i);
        AddAll(_midBlock.Blocks, _downBlocks.Length);
        for (int i = 0; i < _upBlocks.Length; i++) AddAll(_upBlocks[i].Blocks, _upBlocks.Length - 1 - i);
        return [.. blocks];
    }

    /// <summary>diffusers' <c>get_down_block</c>: the block class named by down_block_types[level].</summary>
    private static DownBlock2D GetDownBlock(WeightScope scope, UnetConfig config, int level, int inChannels, bool addDownsample)
        => config.DownBlockTypes[level] switch
        {
            UnetConfig.CrossAttnDownBlock2D => CrossAttnDownBlock2D.Load(scope, config, level, inChannels, addDownsample),
            UnetConfig.DownBlock2D => DownBlock2D.Load(scope, config, level, inChannels, addDownsample),
            var other => throw new ConfigException(nameof(UnetConfig), "down_block_types", $"unsupported block type '{other}'"),
        };

    /// <summary>diffusers' <c>get_up_block</c>: the block class named by up_block_types[levels - 1 - level].</summary>
    private static UpBlock2D GetUpBlock(WeightScope scope, UnetConfig config, int level, int inChannels, int prevOutputChannels, bool addUpsample)
        => config.UpBlockTypes[config.Levels - 1 - level] switch
        {
            UnetConfig.CrossAttnUpBlock2D => CrossAttnUpBlock2D.Load(scope, config, level, inChannels, prevOutputChannels, addUpsample),
            UnetConfig.UpBlock2D => UpBlock2D.Load(scope, config, level, inChannels, prevOutputChannels, addUpsample),
            var other => throw new ConfigException(nameof(UnetConfig), "up_block_types", $"unsupported block type '{other}'"),
        };

    /// <summary>
    /// sample [B, H, W, in_channels], timesteps [B] (fractional allowed), encoderHiddenStates [B, T, cross_attention_dim],
    /// guidanceScale [B] (only for models with time_cond_proj_dim; empty = no guidance condition) -> [B, H, W, out_channels].
    /// <paramref name="hook"/> sees every block of <see cref="HookedBlocks"/> (block caching); without one, or when it lets
    /// every block run, the output is the plain UNet's, bit for bit.
    /// </summary>
    public Tensor Forward(Tensor sample, ReadOnlySpan<float> timesteps, Tensor encoderHiddenStates, ReadOnlySpan<float> guidanceScale = default,
        IBlockHook? hook = null)
    {
        CheckInputs(sample, timesteps, encoderHiddenStates, guidanceScale);
        using var arena = ActivationPool.Install([sample.Shape[0], sample.Shape[1], sample.Shape[2], encoderHiddenStates.Shape[1]]);

        // 1. time
        Tensor emb;
        using (var tEmb = _timeProj.Forward(timesteps)) // [B, C0]
        using (var condition = guidanceScale.IsEmpty ? null : GuidanceEmbedding.Forward(guidanceScale, Config.TimeCondProjDim!.Value)) // [B, cond]
            emb = _timeEmbedding.Forward(tEmb, condition); // [B, Temb]
        using var _ = emb;

        // 2. pre-process; the skips stack holds every down-path state until its up block consumes it.
        var skips = ArrayPool<Tensor>.Shared.Rent(_skipCount);
        int count = 0;
        try
        {
            if (Config.CenterInputSample)
            {
                using var centered = sample.Clone(); // [B, H, W, Cin]
                var values = centered.Span;
                for (int i = 0; i < values.Length; i++) values[i] = 2f * values[i] - 1f;
                skips[count++] = _convIn.Forward(centered); // [B, H, W, C0]
            }
            else
            {
                skips[count++] = _convIn.Forward(sample); // [B, H, W, C0]
            }

            // 3. down
            foreach (var block in _downBlocks)
            {
                block.Forward(skips[count - 1], emb, encoderHiddenStates, skips.AsSpan(count, block.OutputCount), hook); // [B, h, w, Ci] each
                count += block.OutputCount;
            }

            // 4. mid
            var hidden = _midBlock.Forward(skips[count - 1], emb, encoderHiddenStates, hook); // [B, h, w, Clast]

            // 5. up
            for (int i = 0; i < _upBlocks.Length; i++)
            {
                var block = _upBlocks[i];
                count -= block.SkipCount;
                var blockSkips = skips.AsSpan(count, block.SkipCount);
                (int, int)? upsampleSize = count > 0 ? (skips[count - 1].Shape[1], skips[count - 1].Shape[2]) : null;
                Tensor next;
                try
                {
                    next = block.Forward(hidden, blockSkips, emb, encoderHiddenStates, upsampleSize, hook); // [B, h', w', Ci]
                }
                finally
                {
                    hidden.Dispose();
                    foreach (var t in blockSkips) t.Dispose();
                    blockSkips.Clear();
                }
                hidden = next;
            }

            // 6. post-process
            using (hidden)
            {
                _convNormOut.Forward(hidden, hidden, silu: true); // [B, H, W, C0]
                return _convOut.Forward(hidden); // [B, H, W, Cout]
            }
        }
        finally
        {
            for (int i = 0; i < count; i++) skips[i].Dispose();
            ArrayPool<Tensor>.Shared.Return(skips, clearArray: true);
        }
    }

    protected override void DisposeOwned() => ActivationPool.Dispose();

    private void CheckInputs(Tensor sample, ReadOnlySpan<float> timesteps, Tensor encoderHiddenStates, ReadOnlySpan<float> guidanceScale)
    {
        if (sample.Rank != 4 || sample.Shape[3] != Config.InChannels)
            throw new ArgumentException($"UNet sample {sample} must be [B, H, W, {Config.InChannels}] (channels-last).", nameof(sample));
        int b = sample.Shape[0];
        if (timesteps.Length != b)
            throw new ArgumentException($"UNet needs one timestep per batch item: {b} items, {timesteps.Length} timesteps.", nameof(timesteps));
        if (encoderHiddenStates.Rank != 3 || encoderHiddenStates.Shape[0] != b || encoderHiddenStates.Shape[2] != Config.CrossAttentionDim)
            throw new ArgumentException($"UNet encoder hidden states {encoderHiddenStates} must be [{b}, T, {Config.CrossAttentionDim}].", nameof(encoderHiddenStates));
        if (!guidanceScale.IsEmpty && Config.TimeCondProjDim is null)
            throw new ArgumentException("A guidance scale was given, but this UNet has no guidance embedding (time_cond_proj_dim).", nameof(guidanceScale));
        if (!guidanceScale.IsEmpty && guidanceScale.Length != b)
            throw new ArgumentException($"UNet needs one guidance scale per batch item: {b} items, {guidanceScale.Length} scales.", nameof(guidanceScale));
    }

    /// <summary>
    /// Floating-point operations of one forward of one batch item at a latent of <paramref name="latentHeight"/> x
    /// <paramref name="latentWidth"/> with <paramref name="contextTokens"/> text tokens: 2 x the multiply-accumulates of
    /// every convolution, linear layer and attention product (normalisations and activations not counted).
    /// </summary>
    public long FlopsPerForward(int latentHeight, int latentWidth, int contextTokens = 77)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latentHeight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(latentWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextTokens, 1);
        long macs = _convIn.MultiplyAccumulates(latentHeight, latentWidth) + _timeEmbedding.MultiplyAccumulates();
        var sizes = LevelSizes(latentHeight, latentWidth);
        for (int k = 0; k < _downBlocks.Length; k++)
            macs += _downBlocks[k].MultiplyAccumulates(sizes[k].H, sizes[k].W, contextTokens);
        var (midH, midW) = sizes[^1];
        macs += _midBlock.MultiplyAccumulates(midH, midW, contextTokens);
        // sizes[k] is the input size of down block k; up block i works at level levels-1-i and upsamples to the level above.
        for (int i = 0; i < _upBlocks.Length; i++)
        {
            int level = _upBlocks.Length - 1 - i;
            var (h, w) = sizes[level];
            var target = level > 0 ? sizes[level - 1] : (h, w);
            macs += _upBlocks[i].MultiplyAccumulates(h, w, target, contextTokens);
        }
        macs += _convOut.MultiplyAccumulates(latentHeight, latentWidth);
        return 2 * macs;
    }

    /// <summary>
    /// FLOPs of each of <see cref="HookedBlocks"/> for one batch item, counted as <see cref="FlopsPerForward"/> counts
    /// them: <c>Run</c> when the block runs, <c>Saved</c> when a hook skips it (the run less the conv_shortcut a skipped
    /// resnet still computes).
    /// </summary>
    public (long Run, long Saved)[] HookedBlockFlops(int latentHeight, int latentWidth, int contextTokens = 77)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latentHeight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(latentWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextTokens, 1);
        var sizes = LevelSizes(latentHeight, latentWidth);
        var flops = new (long Run, long Saved)[_hookedBlocks.Length];
        foreach (var block in _hookedBlocks)
        {
            var (h, w) = sizes[block.SizeIndex];
            (long run, long kept) = block.Module switch
            {
                ResnetBlock2D resnet => (resnet.MultiplyAccumulates(h, w), resnet.ShortcutMultiplyAccumulates(h, w)),
                Transformer2DModel transformer => (transformer.MultiplyAccumulates(h, w, contextTokens), 0L),
                _ => throw new InvalidOperationException($"Unexpected hooked block {block.Module.GetType().Name}."),
            };
            flops[block.Index] = (2 * run, 2 * (run - kept));
        }
        return flops;
    }

    /// <summary>
    /// The spatial sizes the UNet works at for a latent of <paramref name="latentHeight"/> x <paramref name="latentWidth"/>:
    /// element k is the input size of down block k, the last one the mid block's (<see cref="HookedBlock.SizeIndex"/>).
    /// </summary>
    public IReadOnlyList<(int H, int W)> LevelSizes(int latentHeight, int latentWidth)
    {
        var sizes = new List<(int H, int W)> { (latentHeight, latentWidth) };
        foreach (var block in _downBlocks) sizes.Add(block.OutputSize(sizes[^1].H, sizes[^1].W));
        return sizes;
    }
}
