using DiffusionSharp.Tensors;

namespace DiffusionSharp.Caching;

/// <summary>
/// The element-wise work of caching on channels-last [B, H, W, C] tensors: taking a residual, adding one back with an
/// optional per-channel scale/shift, and the L1 sums of the change metric. Cheap next to the blocks they stand for
/// (one pass over a block's output), so plain loops.
/// </summary>
internal static class ResidualMath
{
    /// <summary>residual = output - skip.</summary>
    public static void Subtract(Tensor output, Tensor skip, Tensor residual)
    {
        CheckSameShape(output, skip);
        CheckSameShape(output, residual);
        var o = output.Span;
        var s = skip.Span;
        var r = residual.Span;
        for (int i = 0; i < r.Length; i++) r[i] = o[i] - s[i];
    }

    /// <summary>output = skip + scale[c] * residual + shift[c], or skip + residual without a correction; output may be skip.</summary>
    public static void Add(Tensor skip, Tensor residual, ChannelCorrection? correction, Tensor output)
    {
        CheckSameShape(residual, skip);
        CheckSameShape(residual, output);
        var s = skip.Span;
        var r = residual.Span;
        var o = output.Span;
        if (correction is null)
        {
            for (int i = 0; i < o.Length; i++) o[i] = s[i] + r[i];
            return;
        }
        int channels = residual.Shape[^1];
        var scale = correction.Scale;
        var shift = correction.Shift;
        if (scale.Length != channels || shift.Length != channels)
            throw new ArgumentException($"A correction of {scale.Length} channels cannot apply to {residual}.", nameof(correction));
        for (int p = 0; p < o.Length; p += channels)
            for (int c = 0; c < channels; c++)
                o[p + c] = s[p + c] + (scale[c] * r[p + c] + shift[c]);
    }

    /// <summary>For batch item <paramref name="item"/>: sum |current - previous| and sum |current|, in double.</summary>
    public static (double Difference, double Magnitude) L1(Tensor current, Tensor previous, int item)
    {
        CheckSameShape(current, previous);
        int per = checked((int)(current.Length / current.Shape[0]));
        var a = current.Span.Slice(item * per, per);
        var b = previous.Span.Slice(item * per, per);
        double difference = 0, magnitude = 0;
        for (int i = 0; i < per; i++)
        {
            difference += Math.Abs((double)a[i] - b[i]);
            magnitude += Math.Abs((double)a[i]);
        }
        return (difference, magnitude);
    }

    public static void CheckSameShape(Tensor a, Tensor b)
    {
        if (!a.ShapeEquals(b.Shape))
            throw new ArgumentException($"Tensor {a} does not match {b}.");
    }
}
