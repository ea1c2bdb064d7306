using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Clip;

/// <summary>
/// HF transformers <c>CLIPTextModel</c>, the text encoder of Stable Diffusion 1.x: token ids [B, T] ->
/// last_hidden_state [B, T, C] (after <c>final_layer_norm</c>). Keys under <c>text_model.</c>: <c>embeddings</c>,
/// <c>encoder.layers.{i}</c>, <c>final_layer_norm</c>. "CLIP skip" k (as the AUTOMATIC1111 web UI counts it) stops
/// after layer L-k+1 of L and applies final_layer_norm to that hidden state; k = 1 is the plain output.
/// </summary>
public sealed class ClipTextModel : Module
{
    private readonly ClipTextEmbeddings _embeddings;
    private readonly ClipEncoderLayer[] _layers;
    private readonly LayerNorm _finalLayerNorm;

    public ClipTextConfig Config { get; }

    private ClipTextModel(WeightScope scope, ClipTextConfig config)
    {
        Config = config;
        try
        {
            var textModel = scope.Push("text_model");
            _embeddings = Add(ClipTextEmbeddings.Load(textModel.Push("embeddings"), config.VocabSize, config.MaxPositionEmbeddings, config.HiddenSize));
            var layers = textModel.Push("encoder").Push("layers");
            _layers = new ClipEncoderLayer[config.NumHiddenLayers];
            for (int i = 0; i < _layers.Length; i++) _layers[i] = Add(ClipEncoderLayer.Load(layers.Push(i), config));
            _finalLayerNorm = Add(LayerNorm.Load(textModel.Push("final_layer_norm"), config.HiddenSize, config.LayerNormEps));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Binds the weights under <paramref name="scope"/> (which holds <c>text_model.</c>: a transformers
    /// <c>model.safetensors</c>, or a single-file checkpoint's <c>cond_stage_model.transformer.</c>).</summary>
    public static ClipTextModel Load(WeightScope scope, ClipTextConfig config) => new(scope, config.Validate());

    /// <summary>
    /// inputIds: B sequences of T token ids, row-major (T &lt;= max_position_embeddings, each id &lt; vocab_size) ->
    /// [B, T, hidden_size], a new tensor. <paramref name="clipSkip"/> in [1, num_hidden_layers].
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> inputIds, int batchSize, int clipSkip = 1)
    {
        if (batchSize < 1 || inputIds.IsEmpty || inputIds.Length % batchSize != 0)
            throw new ArgumentException($"{inputIds.Length} token ids do not form {batchSize} sequences of equal length.", nameof(inputIds));
        int tokens = inputIds.Length / batchSize;
        if (tokens > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"Sequences of {tokens} tokens exceed the text encoder's {Config.MaxPositionEmbeddings} positions.", nameof(inputIds));
        for (int i = 0; i < inputIds.Length; i++)
            if ((uint)inputIds[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"Token id {inputIds[i]} at position {i} is outside the vocabulary [0, {Config.VocabSize}).", nameof(inputIds));
        if (clipSkip < 1 || clipSkip > _layers.Length)
            throw new ArgumentOutOfRangeException(nameof(clipSkip), clipSkip, $"CLIP skip must be in [1, {_layers.Length}].");

        var hidden = _embeddings.Forward(inputIds, batchSize); // [B, T, C]
        try
        {
            for (int i = 0; i < _layers.Length - (clipSkip - 1); i++) _layers[i].Forward(hidden); // [B, T, C]
            _finalLayerNorm.Forward(hidden, hidden); // [B, T, C]
            return hidden;
        }
        catch
        {
            hidden.Dispose();
            throw;
        }
    }
}
