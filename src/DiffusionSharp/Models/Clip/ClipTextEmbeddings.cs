using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;

namespace DiffusionSharp.Models.Clip;

/// <summary>HF transformers <c>CLIPTextEmbeddings</c>: token embedding plus learned absolute position embedding
/// (positions 0..T-1). Keys <c>token_embedding</c>, <c>position_embedding</c>.</summary>
public sealed class ClipTextEmbeddings : Module
{
    private readonly Embedding _tokenEmbedding;
    private readonly Embedding _positionEmbedding;

    public int VocabSize => _tokenEmbedding.Count;
    public int MaxPositions => _positionEmbedding.Count;

    private ClipTextEmbeddings(WeightScope scope, int vocabSize, int maxPositions, int hiddenSize)
    {
        try
        {
            _tokenEmbedding = Add(Embedding.Load(scope.Push("token_embedding"), vocabSize, hiddenSize));
            _positionEmbedding = Add(Embedding.Load(scope.Push("position_embedding"), maxPositions, hiddenSize));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static ClipTextEmbeddings Load(WeightScope scope, int vocabSize, int maxPositions, int hiddenSize)
        => new(scope, vocabSize, maxPositions, hiddenSize);

    /// <summary>inputIds [B*T] (row-major [B, T]) -> [B, T, C], a new tensor.</summary>
    public Tensor Forward(ReadOnlySpan<int> inputIds, int batchSize)
    {
        var embeddings = _tokenEmbedding.Forward(inputIds, batchSize); // [B, T, C]
        int tokens = embeddings.Shape[1], dim = embeddings.Shape[2];
        var values = embeddings.Span;
        for (int b = 0; b < batchSize; b++)
        for (int t = 0; t < tokens; t++)
        {
            var row = values.Slice((b * tokens + t) * dim, dim);
            var position = _positionEmbedding[t];
            for (int c = 0; c < dim; c++) row[c] += position[c];
        }
        return embeddings;
    }
}
