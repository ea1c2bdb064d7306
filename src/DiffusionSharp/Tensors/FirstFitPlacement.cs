namespace DiffusionSharp.Tensors;

/// <summary>
/// Places tensors in one address range, each at the lowest offset where it fits between the ones alive (first fit), as
/// <see cref="TensorPool"/> lays out its slab. The same sequence of places and removals from the same state gives the same
/// offsets, so a slab sized by <see cref="HighWater"/> of one step serves the next identical step in full. Without a
/// capacity it only computes offsets (the pool's first step, whose tensors have their own buffers). Not thread-safe.
/// </summary>
internal sealed class FirstFitPlacement(long capacity = long.MaxValue, int blocks = 16)
{
    /// <summary>Offsets and sizes are multiples of this: every tensor stays 64-byte aligned.</summary>
    private const long Granule = Tensor.Alignment;

    private Block[] _blocks = new Block[Math.Max(blocks, 1)];
    private int _count;

    /// <summary>The most blocks ever alive at once.</summary>
    public int MostBlocks { get; private set; }

    /// <summary>The end of the highest block ever placed: the bytes a slab needs for what was placed so far.</summary>
    public long HighWater { get; private set; }

    /// <summary>Blocks alive.</summary>
    public int Count => _count;

    /// <summary>The byte offset of a new block of <paramref name="bytes"/>, or -1 when it does not fit.</summary>
    public long Place(long bytes)
    {
        long size = (bytes + Granule - 1) / Granule * Granule;
        long offset = 0;
        int index = 0;
        while (index < _count && _blocks[index].Offset - offset < size)
        {
            offset = _blocks[index].Offset + _blocks[index].Size;
            index++;
        }
        if (offset + size > capacity) return -1;
        if (_count == _blocks.Length) Array.Resize(ref _blocks, 2 * _count);
        Array.Copy(_blocks, index, _blocks, index + 1, _count - index);
        _blocks[index] = new Block(offset, size);
        _count++;
        MostBlocks = Math.Max(MostBlocks, _count);
        HighWater = Math.Max(HighWater, offset + size);
        return offset;
    }

    /// <summary>Frees the block at <paramref name="offset"/>; false when none starts there.</summary>
    public bool Remove(long offset)
    {
        for (int i = 0; i < _count; i++)
        {
            if (_blocks[i].Offset != offset) continue;
            Array.Copy(_blocks, i + 1, _blocks, i, _count - i - 1);
            _blocks[--_count] = default;
            return true;
        }
        return false;
    }

    private readonly record struct Block(long Offset, long Size);
}
