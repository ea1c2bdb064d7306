using DiffusionSharp.Tensors;

namespace DiffusionSharp.Tests.Tensors;

/// <summary><see cref="FirstFitPlacement"/>: the lowest gap that fits, 64-byte granules, the capacity and the high water mark.</summary>
public class FirstFitPlacementTests
{
    [Fact]
    public void Blocks_go_to_the_lowest_gap_that_fits_in_whole_granules()
    {
        var placement = new FirstFitPlacement();
        Assert.Equal(0, placement.Place(100));      // [0, 128)
        Assert.Equal(128, placement.Place(1));      // [128, 192)
        Assert.Equal(192, placement.Place(64));     // [192, 256)
        Assert.True(placement.Remove(0));
        Assert.Equal(256, placement.Place(129));    // 192 bytes do not fit the 128 freed: after the last block
        Assert.Equal(0, placement.Place(128));      // 128 do
        Assert.True(placement.Remove(128));
        Assert.True(placement.Remove(192));
        Assert.Equal(128, placement.Place(128));    // the two freed neighbours form one gap
        Assert.Equal(448, placement.HighWater);
        Assert.Equal(4, placement.MostBlocks);
        Assert.Equal(3, placement.Count);
    }

    [Fact]
    public void Nothing_is_placed_past_the_capacity()
    {
        var placement = new FirstFitPlacement(capacity: 192, blocks: 1);
        Assert.Equal(0, placement.Place(128));
        Assert.Equal(-1, placement.Place(65));
        Assert.Equal(128, placement.Place(64));
        Assert.Equal(-1, placement.Place(1));
        Assert.Equal(2, placement.Count);
    }

    [Fact]
    public void Removing_where_no_block_starts_changes_nothing()
    {
        var placement = new FirstFitPlacement();
        placement.Place(128);
        Assert.False(placement.Remove(64));
        Assert.True(placement.Remove(0));
        Assert.False(placement.Remove(0));
        Assert.Equal(0, placement.Count);
    }

    /// <summary>The property the pool's slab rests on: a slab sized by one run's high water mark holds a second run of the
    /// same requests at the same offsets, never refusing one.</summary>
    [Fact]
    public void The_same_sequence_from_the_same_state_gives_the_same_offsets()
    {
        static long[] Run(FirstFitPlacement placement)
        {
            var random = new Random(3);
            var offsets = new List<long>();
            var live = new List<long>();
            for (int op = 0; op < 400; op++)
            {
                if (live.Count > 0 && random.Next(3) == 0)
                {
                    int k = random.Next(live.Count);
                    Assert.True(placement.Remove(live[k]));
                    live.RemoveAt(k);
                    continue;
                }
                long offset = placement.Place(random.Next(1, 5000));
                offsets.Add(offset);
                live.Add(offset);
            }
            return [.. offsets];
        }
        var unbounded = new FirstFitPlacement();
        long[] planned = Run(unbounded);
        Assert.DoesNotContain(-1L, planned);
        Assert.Equal(planned, Run(new FirstFitPlacement(unbounded.HighWater, unbounded.MostBlocks)));
    }
}
