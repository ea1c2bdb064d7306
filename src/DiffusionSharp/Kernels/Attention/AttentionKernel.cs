using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using DiffusionSharp.Kernels.Gemm;
using DiffusionSharp.Threading;

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
/// Causal attention masks keys j &gt; i (CLIP's text encoder).
/// </summary>
public static unsafe class AttentionKernel
{
    [ThreadStatic] private static float* t_scores;
    [ThreadStatic] private static int t_scoresLength;

    public static void Forward(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim,
        float scale, AttentionActivation activation, bool causal)
    {
        if (batch <= 0 || heads <= 0 || tq <= 0 || tk <= 0 || headDim <= 0)
            throw new ArgumentException($"Attention sizes must be positive: batch {batch}, heads {heads}, Tq {tq}, Tk {tk}, d {headDim}.");
        if (causal && tq != tk) throw new ArgumentException($"Causal attention needs Tq == Tk, got {tq} and {tk}.");
        if (KernelSettings.UseReference) { ForwardReference(ops, batch, heads, tq, tk, headDim, scale, activation, causal); return; }
        var args = new Args { Ops = ops, Heads = heads, Tq = tq, Tk = tk, D = headDim, Scale = scale, Act = activation, Causal = causal };
        ThreadScheduler.Default.For(batch * heads * tq, &FastRow, &args);
    }

    /// <summary>The spec: every query row in double precision, serially.</summary>
    public static void ForwardReference(in AttentionOperands ops, int batch, int heads, int tq, int tk, int headDim,
        float scale, AttentionActivation activation, bool causal)
    {
        var args = new Args { Ops = ops, Heads = heads, Tq = tq, Tk = tk, D = headDim, Scale = scale, Act = activation, Causal = causal };
        for (int i = 0; i < batch * heads * tq; i++) ReferenceRow(ref args, i);
    }

    private struct Args
    {
        public AttentionOperands Ops; public int Heads; public int Tq; public int Tk; public int D;
        public float Scale; public AttentionActivation Act; public bool Causal;
    }

    private static void Locate(ref Args a, int index, out float* q, out float* k, out float* v, out float* o, out int keys)
    {
        int i = index % a.Tq;
        int h = index / a.Tq % a.Heads;
        int b = index / (a.Tq * a.Heads);
        q = a.Ops.Q + ((long)b * a.Tq + i) * a.Ops.Ldq + h * a.D;
        o = a.Ops.O + ((long)b * a.Tq + i) * a.Ops.Ldo + h * a.D;
        k = a.Ops.K + (long)b * a.Tk * a.Ops.Ldk + h * a.D;
        v = a.Ops.V + (long)b * a.Tk * a.Ops.Ldv + h * a.D;
        keys = a.Causal ? i + 1 : a.Tk;
    }

    /// <summary>One query row in double precision: the spec.</summary>
    private static void ReferenceRow(ref Args a, int index)
    {
        Locate(ref a, index, out float* q, out float* k, out float* v, out float* o, out int keys);
        var w = new double[keys];
        double max = double.NegativeInfinity;
        for (int j = 0; j < keys; j++)
        {
            double s = 0;
            for (int c = 0; c < a.D; c++) s += (double)q[c] * k[(long)j * a.Ops.Ldk + c];
            w[j] = s * a.Scale;
            max = Math.Max(max, w[j]);
        }
        double norm = 0;
        for (int j = 0; j < keys; j++)
        {
            w[j] = a.Act == AttentionActivation.Softmax ? Math.Exp(w[j] - max) : Math.Max(0, w[j]);
            norm += w[j];
        }
        if (a.Act == AttentionActivation.Relu) norm = a.Tk;
        for (int c = 0; c < a.D; c++)
        {
            double acc = 0;
            for (int j = 0; j < keys; j++) acc += w[j] * v[(long)j * a.Ops.Ldv + c];
            o[c] = (float)(acc / norm);
        }
    }

    private static void FastRow(void* context, int index)
    {
        ref Args a = ref Unsafe.AsRef<Args>(context);
        Locate(ref a, index, out float* q, out float* k, out float* v, out float* o, out int keys);
        float* w = Scores(keys);
        float max = float.NegativeInfinity;
        for (int j = 0; j < keys; j++)
        {
            float s = GemmKernel.Dot(q, k + (long)j * a.Ops.Ldk, a.D) * a.Scale;
            w[j] = s;
            if (s > max) max = s;
        }
        float norm;
        if (a.Act == AttentionActivation.Softmax)
        {
            float sum = 0;
            int j = 0;
            var vmax = Vector512.Create(max);
            var vsum = Vector512<float>.Zero;
            for (; j <= keys - 16; j += 16)
            {
                var e = Vector512.Exp(Vector512.Load(w + j) - vmax);
                e.Store(w + j);
                vsum += e;
            }
            sum = Vector512.Sum(vsum);
            for (; j < keys; j++) { w[j] = MathF.Exp(w[j] - max); sum += w[j]; }
            norm = sum;
        }
        else
        {
            for (int j = 0; j < keys; j++) w[j] = MathF.Max(0, w[j]);
            norm = a.Tk;
        }
        new Span<float>(o, a.D).Clear();
        for (int j = 0; j < keys; j++) GemmKernel.Axpy(w[j], v + (long)j * a.Ops.Ldv, o, a.D);
        float inv = 1f / norm;
        for (int c = 0; c < a.D; c++) o[c] *= inv;
    }

    private static float* Scores(int length)
    {
        if (t_scoresLength < length)
        {
            if (t_scores != null) NativeMemory.AlignedFree(t_scores);
            t_scores = (float*)NativeMemory.AlignedAlloc((nuint)length * sizeof(float), 64);
            t_scoresLength = length;
        }
        return t_scores;
    }
}
