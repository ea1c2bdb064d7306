using DiffusionSharp.Tensors;

namespace DiffusionSharp.Nn;

/// <summary>PyTorch <c>nn.Embedding</c>: a lookup table, key <c>weight</c> [count, dim], held in native memory.</summary>
public sealed class Embedding : Module
{
    private readonly Tensor _weight;

    public int Count { get; }
    public int Dim { get; }

    private Embedding(WeightScope scope, int count, int dim)
    {
        Count = count;
        Dim = dim;
        _weight = new Tensor(count, dim); // [count, dim]
        try
        {
            scope.RequireInto("weight", _weight.Span, count, dim);
        }
        catch
        {
            _weight.Dispose();
            throw;
        }
    }

    public static Embedding Load(WeightScope scope, int count, int dim) => new(scope, count, dim);

    /// <summary>Row <paramref name="index"/> of the table.</summary>
    public ReadOnlySpan<float> this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(index), index, $"Embedding index must be in [0, {Count}).");
            return _weight.Span.Slice(index * Dim, Dim);
        }
    }

    /// <summary>ids [B*T] (row-major [B, T]) -> [B, T, Dim], a new tensor.</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch)
    {
        if (batch <= 0 || ids.Length == 0 || ids.Length % batch != 0)
            throw new ArgumentException($"{ids.Length} ids do not form a batch of {batch} equal sequences.", nameof(ids));
        int tokens = ids.Length / batch;
        var y = new Tensor(batch, tokens, Dim); // [B, T, Dim]
        try
        {
            var dst = y.Span;
            for (int i = 0; i < ids.Length; i++) this[ids[i]].CopyTo(dst.Slice(i * Dim, Dim));
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    protected override long OwnParameterCount => (long)Count * Dim;

    protected override void DisposeOwned() => _weight.Dispose();
}
