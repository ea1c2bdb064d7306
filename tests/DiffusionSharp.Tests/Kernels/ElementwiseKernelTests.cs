using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Elementwise;
using DiffusionSharp.Tests.Support;
using static DiffusionSharp.Tests.Kernels.KernelTestData;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>Activations, gates, the vector exp and erf, and the memory-bound tensor ops against scalar definitions.</summary>
public unsafe class ElementwiseKernelTests
{
    [Fact]
    public void Vector_exp_matches_math_exp_across_its_range()
    {
        var x = new float[20001];
        for (int i = 0; i < x.Length; i++) x[i] = -87f + i * (175f / (x.Length - 1));
        var expected = x.Select(v => (float)Math.Exp(v)).ToArray();
        var actual = new float[x.Length];
        for (int i = 0; i < x.Length; i++) actual[i] = VectorMath.Exp(x[i]);
        Tolerance.AssertClose(expected, actual, 0, 3e-7, "exp");
    }

    [Fact]
    public void Vector_exp_handles_special_values()
    {
        float[] x = [float.NegativeInfinity, -1000f, -87.4f, -0f, 0f, 88.5f, 1000f, float.PositiveInfinity, float.NaN];
        float[] expected = [0f, 0f, 0f, 1f, 1f, float.PositiveInfinity, float.PositiveInfinity, float.PositiveInfinity, float.NaN];
        for (int i = 0; i < x.Length; i++)
        {
            float y = VectorMath.Exp(x[i]);
            Assert.True(y.Equals(expected[i]), $"exp({x[i]}) = {y}, expected {expected[i]}");
            Assert.True(VectorMath.Exp(Vector512.Create(x[i])).ToScalar().Equals(expected[i]));
        }
    }

    [Fact]
    public void Fast_erf_and_activations_match_double_reference()
    {
        var x = new float[4001];
        for (int i = 0; i < x.Length; i++) x[i] = -10f + i * 0.005f;
        foreach (var kind in new[] { ActivationKind.Silu, ActivationKind.Gelu, ActivationKind.QuickGelu, ActivationKind.None })
        {
            using var input = GuardedBuffer.From(x);
            using var y = new GuardedBuffer(x.Length);
            Activations.Apply(kind, input.Pointer, y.Pointer, x.Length);
            var expected = x.Select(v => (float)Activations.Reference(kind, v)).ToArray();
            Tolerance.AssertClose(expected, y.ToArray(), 1e-6, 1e-5, kind.ToString());
        }
    }

    [Theory]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.Gelu)]
    [InlineData(ActivationKind.QuickGelu)]
    public void Activations_over_tails_and_parallel_chunks_match_reference_in_place(ActivationKind kind)
    {
        foreach (int n in TailSizes.Append(200_003))
        {
            var x = Uniform(n, n, 6);
            PlantSpecials(x, n + 1, Math.Min(n, 5));
            var expected = new float[n];
            fixed (float* px = x, pe = expected) Activations.ApplyReference(kind, px, pe, n);
            using var y = GuardedBuffer.From(x);
            Activations.Apply(kind, y.Pointer, y.Pointer, n);
            AssertSameSpecials(expected, y.Span, 1e-6, 1e-5, $"{kind} n={n}");
        }
    }

    [Theory]
    [InlineData(GateKind.Geglu)]
    [InlineData(GateKind.Swiglu)]
    public void Gated_matches_reference_out_of_place_and_in_place(GateKind kind)
    {
        foreach (var (rows, width) in new[] { (1, 1), (3, 17), (5, 33), (77, 1280), (200, 320) })
        {
            var x = Uniform(rows * 2 * width, rows + width, 4);
            var expected = new float[rows * width];
            fixed (float* px = x, pe = expected) Activations.GatedReference(kind, px, rows, width, pe);
            using var input = GuardedBuffer.From(x);
            using var y = new GuardedBuffer(rows * width);
            Activations.Gated(kind, input.Pointer, rows, width, y.Pointer);
            Tolerance.AssertClose(expected, y.ToArray(), 1e-6, 1e-5, $"{kind} {rows}x{width}");
            Activations.Gated(kind, input.Pointer, rows, width, input.Pointer);
            Tolerance.AssertClose(expected, input.Span[..(rows * width)], 1e-6, 1e-5, $"{kind} {rows}x{width} in place");
        }
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(-2.0, -0.9953222650189527)]
    [InlineData(3.5, 0.9999992569016276)]
    public void Erf_reference_matches_published_values(double x, double expected)
        => Assert.Equal(expected, Erf.Reference(x), 12);

    [Fact]
    public void Tensor_ops_match_scalar_definitions_over_tails_and_parallel_chunks()
    {
        foreach (int n in TailSizes.Append(300_001))
        {
            var a = Uniform(n, 1);
            var b = Uniform(n, 2);
            using var ga = GuardedBuffer.From(a);
            using var gb = GuardedBuffer.From(b);
            using var y = new GuardedBuffer(n);
            TensorOps.Add(ga.Pointer, gb.Pointer, y.Pointer, n);
            Tolerance.AssertClose(a.Zip(b, (p, q) => p + q).ToArray(), y.ToArray(), 0, 0, $"add {n}");
            TensorOps.Scale(y.Pointer, 0.5f, n);
            Tolerance.AssertClose(a.Zip(b, (p, q) => (p + q) * 0.5f).ToArray(), y.ToArray(), 0, 0, $"scale {n}");
        }
        foreach (var (rows, cols) in new[] { (1, 1), (7, 17), (5000, 33) })
        {
            var x = Uniform(rows * cols, 3);
            var v = Uniform(cols, 4);
            using var gx = GuardedBuffer.From(x);
            using var gv = GuardedBuffer.From(v);
            TensorOps.AddRowVector(gx.Pointer, rows, cols, gv.Pointer);
            Tolerance.AssertClose(x.Select((e, i) => e + v[i % cols]).ToArray(), gx.ToArray(), 0, 0, $"add row vector {rows}x{cols}");
        }
    }

    [Fact]
    public void Concat_and_upsample_move_every_element()
    {
        foreach (var (pixels, ca, cb) in new[] { (1, 1, 1), (5, 3, 17), (3000, 40, 24) })
        {
            var a = Uniform(pixels * ca, 5);
            var b = Uniform(pixels * cb, 6);
            using var ga = GuardedBuffer.From(a);
            using var gb = GuardedBuffer.From(b);
            using var y = new GuardedBuffer(pixels * (ca + cb));
            TensorOps.ConcatChannels(ga.Pointer, ca, gb.Pointer, cb, pixels, y.Pointer);
            for (int p = 0; p < pixels; p++)
            {
                Assert.True(y.Span.Slice(p * (ca + cb), ca).SequenceEqual(a.AsSpan(p * ca, ca)));
                Assert.True(y.Span.Slice(p * (ca + cb) + ca, cb).SequenceEqual(b.AsSpan(p * cb, cb)));
            }
        }
        foreach (var (batch, h, w, c) in new[] { (1, 1, 1, 1), (2, 3, 5, 7), (1, 40, 33, 64) })
        {
            var x = Uniform(batch * h * w * c, 7);
            using var gx = GuardedBuffer.From(x);
            using var y = new GuardedBuffer(batch * 4 * h * w * c);
            TensorOps.UpsampleNearest2x(gx.Pointer, batch, h, w, c, y.Pointer);
            for (int b = 0; b < batch; b++)
            for (int oy = 0; oy < 2 * h; oy++)
            for (int ox = 0; ox < 2 * w; ox++)
                Assert.True(y.Span.Slice(((b * 2 * h + oy) * 2 * w + ox) * c, c)
                    .SequenceEqual(x.AsSpan(((b * h + oy / 2) * w + ox / 2) * c, c)), $"upsample ({b}, {oy}, {ox})");
        }
    }
}
