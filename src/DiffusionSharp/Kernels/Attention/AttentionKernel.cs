namespace DiffusionSharp.Kernels.Attention;

/// <summary>How attention weights are formed from the scores s = q·k * scale.</summary>
public enum AttentionActivation
{
    /// <summary>softmax over keys (with the row max subtracted).</summary>
    Softmax,
    /// <summary>MobileDiffusion's ReLU attention, sequence-length normalised: relu(s) / Tk.</summary>
    Relu,
}

/// <summary>Where q, k, v and o live: token rows with strides, heads as consecutive slices of each row.</summary>
public unsafe readonly struct AttentionOperands
{
    public readonly float* Q, K, V, O;
    public readonly int Ldq, Ldk, Ldv, Ldo;

    public AttentionOperands(float* q, int ldq, float* k, int ldk, float* v, int ldv, float* o, int ldo)
    {
        Q = q; K = k; V = v; O = o; Ldq = ldq; Ldk = ldk; Ldv = ldv; Ldo = ldo;
    }
}

/// <summary>
/// Multi-head attention without materialising the [Tq, Tk] score matrix of a head:
/// o[b, i, h] = sum_j w(s_ij) v[b, j, h] with s_ij = q[b, i, h]·k[b, j, h] * scale.
/// Batch b of q is row b*Tq; of k and v, row b*Tk. Head h is channels [h*d, (h+1)*d) of every row.
/// Causal attention masks keys j &gt; i (CLIP's text encoder). Query rows are independent: results are bitwise
/// deterministic for any thread count. O must not overlap Q, K or V. With <see cref="Fusion.Softmax"/> or
/// <see cref="Fusion.FlashAttention"/> off, non-causal calls run the unfused twins (AttentionKernel.Unfused.cs).
/// </summary>
public static unsafe partial class AttentionKernel
{
    public static void Forward(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim,
        float scale, AttentionActivation activation, bool causal)
    {
        Validate(ops, batch, heads, tq, tk, headDim, causal);
        if (KernelSettings.UseReference) ForwardReference(ops, batch, heads, tq, tk, headDim, scale, activation, causal);
        else if (!causal && !Fusions.IsOn(Fusion.Softmax)) ForwardScoreMatrix(ops, batch, heads, tq, tk, headDim, scale, activation);
        else if (!causal && !Fusions.IsOn(Fusion.FlashAttention)) ForwardPartialSoftmax(ops, batch, heads, tq, tk, headDim, scale, activation);
        else ForwardFlash(ops, batch, heads, tq, tk, headDim, scale, activation, causal, KernelSettings.BestIsa);
    }

    private static void Validate(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim, bool causal)
    {
        if (batch <= 0 || heads <= 0 || tq <= 0 || tk <= 0 || headDim <= 0)
            throw new ArgumentException($"Attention sizes must be positive: batch {batch}, heads {heads}, Tq {tq}, Tk {tk}, d {headDim}.");
        if (causal && tq != tk) throw new ArgumentException($"Causal attention needs Tq == Tk, got {tq} and {tk}.");
        long width = (long)heads * headDim;
        if (ops.Ldq < width || ops.Ldk < width || ops.Ldv < width || ops.Ldo < width)
            throw new ArgumentException($"Attention row strides (q {ops.Ldq}, k {ops.Ldk}, v {ops.Ldv}, o {ops.Ldo}) are shorter than heads x d = {width}.");
    }
}
