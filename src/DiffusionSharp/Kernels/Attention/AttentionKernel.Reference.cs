namespace DiffusionSharp.Kernels.Attention;

public static unsafe partial class AttentionKernel
{
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
}
