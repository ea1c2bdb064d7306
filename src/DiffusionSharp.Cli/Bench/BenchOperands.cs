using System.Runtime.InteropServices;

namespace DiffusionSharp.Cli.Bench;

/// <summary>
/// The operands of a benchmarked kernel call: 64-byte aligned native buffers filled with reproducible values in
/// [-1, 1) (xorshift32 from a seed), and the weight objects made from them, all freed together.
/// </summary>
public abstract unsafe class BenchOperands : IDisposable
{
    private readonly List<nint> _buffers = [];
    private readonly List<IDisposable> _owned = [];

    /// <summary>A buffer of <paramref name="floats"/> values in [-1, 1), the same for the same seed.</summary>
    protected float* Alloc(long floats, uint seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
        _buffers.Add((nint)p);
        uint state = seed * 2654435761u + 1;
        for (long i = 0; i < floats; i++)
        {
            state ^= state << 13; state ^= state >> 17; state ^= state << 5;            // xorshift32
            p[i] = (state >> 8) * (2f / (1 << 24)) - 1f;
        }
        return p;
    }

    /// <summary>Disposes <paramref name="disposable"/> with the operands.</summary>
    protected T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        foreach (var p in _buffers) NativeMemory.AlignedFree((void*)p);
        _owned.Clear();
        _buffers.Clear();
        GC.SuppressFinalize(this);
    }
}
