using DiffusionSharp.Tensors;

namespace DiffusionSharp.Tests.Tensors;

/// <summary><see cref="TensorPool"/>: what it hands out, what it reuses, what it frees.</summary>
public unsafe class TensorPoolTests
{
    [Fact]
    public void Without_an_installed_pool_tensors_are_plain()
    {
        Assert.Null(TensorPool.Current);
        using var pool = new TensorPool();
        using var t = Tensor.Create(2, 3);
        Assert.Equal(0, pool.ObjectsAllocated);
        Assert.Equal([2, 3], t.Shape);
    }

    [Fact]
    public void A_released_tensor_serves_the_next_one_of_its_shape_zero_filled()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var first = Tensor.Create(4, 5);
        float* data = first.Data;
        first.Span.Fill(7f);
        first.Dispose();
        using var second = Tensor.Create(4, 5);
        Assert.Same(first, second);
        Assert.True(second.Data == data);
        Assert.All(second.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal((1, 1), (pool.ObjectsAllocated, pool.BuffersAllocated));
    }

    [Fact]
    public void A_buffer_serves_another_shape_of_the_same_size_but_not_another_size()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var wide = Tensor.Create(2, 6);
        float* data = wide.Data;
        wide.Dispose();
        using var tall = Tensor.Create(3, 4);
        Assert.NotSame(wide, tall);
        Assert.Equal([3, 4], tall.Shape);
        Assert.True(tall.Data == data);
        using var other = Tensor.Create(3, 5);
        Assert.True(other.Data != data);
        Assert.Equal((3, 2), (pool.ObjectsAllocated, pool.BuffersAllocated));
    }

    [Fact]
    public void Live_tensors_never_share_a_buffer()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var tensors = Enumerable.Range(0, 4).Select(_ => Tensor.Create(8)).ToList();
        Assert.Equal(4, tensors.Select(t => (nint)t.Data).Distinct().Count());
        foreach (var t in tensors) t.Dispose();
        var again = Enumerable.Range(0, 4).Select(_ => Tensor.Create(8)).ToList();
        Assert.Equal(tensors.Select(t => (nint)t.Data).Order(), again.Select(t => (nint)t.Data).Order());
        Assert.Equal(4, pool.BuffersAllocated);
        foreach (var t in again) t.Dispose();
    }

    [Fact]
    public void Disposing_twice_returns_the_tensor_once()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var t = Tensor.Create(16);
        t.Dispose();
        t.Dispose();
        Assert.Equal(16 * sizeof(float), pool.FreeBytes);
        using var a = Tensor.Create(16);
        using var b = Tensor.Create(16);
        Assert.True(a.Data != b.Data);
        Assert.NotSame(a, b);
    }

    [Fact]
    public void A_returned_tensor_cannot_be_read_until_it_is_handed_out_again()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var t = Tensor.Create(3);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Span[0]);
    }

    [Fact]
    public void Views_come_from_the_pool_and_do_not_return_the_buffer()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        using var t = Tensor.Create(2, 6);
        t.Span[5] = 3f;
        var view = t.Reshape(3, 4);
        Assert.True(view.Data == t.Data);
        Assert.Equal(3f, view.Span[5]);
        view.Dispose();
        Assert.Equal(0, pool.FreeBytes);
        Assert.Equal(3f, t.Span[5]);
        using var again = t.Reshape(3, 4);
        Assert.Same(view, again);
    }

    [Fact]
    public void A_new_workload_frees_the_old_one_and_the_same_workload_keeps_it()
    {
        using var pool = new TensorPool();
        using (pool.Install([1, 8, 8]))
            Tensor.Create(1, 8, 8).Dispose();
        Assert.Equal(64 * sizeof(float), pool.FreeBytes);
        using (pool.Install([1, 8, 8]))
            Tensor.Create(1, 8, 8).Dispose();
        Assert.Equal(1, pool.BuffersAllocated);
        using (pool.Install([1, 4, 4]))
        {
            Assert.Equal(0, pool.FreeBytes);
            Assert.Equal(0, pool.HeldBytes);
            Tensor.Create(1, 4, 4).Dispose();
        }
        Assert.Equal(16 * sizeof(float), pool.HeldBytes);
        Assert.Equal(64 * sizeof(float), pool.PeakHeldBytes);
    }

    [Fact]
    public void Scopes_nest_and_restore_the_previous_pool()
    {
        using var outer = new TensorPool();
        using var inner = new TensorPool();
        using (outer.Install())
        {
            using (inner.Install())
            {
                Assert.Same(inner, TensorPool.Current);
                Tensor.Create(2).Dispose();
            }
            Assert.Same(outer, TensorPool.Current);
        }
        Assert.Null(TensorPool.Current);
        Assert.Equal((0, 1), (outer.ObjectsAllocated, inner.ObjectsAllocated));
    }

    [Fact]
    public void Disposing_the_pool_frees_its_buffers_and_later_returns_free_their_own()
    {
        var pool = new TensorPool();
        Tensor rented;
        using (pool.Install())
        {
            Tensor.Create(10).Dispose();
            rented = Tensor.Create(20);
        }
        pool.Dispose();
        Assert.Equal(20 * sizeof(float), pool.HeldBytes);
        rented.Span[19] = 1f;
        rented.Dispose();
        Assert.Equal(0, pool.HeldBytes);
        Assert.Equal(0, pool.FreeBytes);
        Assert.Throws<ObjectDisposedException>(() => pool.Install());
    }

    [Fact]
    public void Tensors_may_be_returned_from_other_threads()
    {
        using var pool = new TensorPool();
        using var _ = pool.Install();
        var tensors = Enumerable.Range(0, 64).Select(i => Tensor.Create(i % 4 + 1, 3)).ToArray();
        Parallel.ForEach(tensors, t => t.Dispose());
        Assert.Equal(tensors.Sum(t => t.Length) * sizeof(float), pool.FreeBytes);
        var again = Enumerable.Range(0, 64).Select(i => Tensor.Create(i % 4 + 1, 3)).ToArray();
        Assert.Equal(64, pool.BuffersAllocated);
        Assert.Equal(64, again.Select(t => (nint)t.Data).Distinct().Count());
        foreach (var t in again) t.Dispose();
    }
}
