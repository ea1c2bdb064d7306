namespace DiffusionSharp.Kernels.Gemm;

/// <summary>
/// The GEMM inner kernel: one block of at most <see cref="MicroKernel.Rows"/> x <see cref="MicroKernel.Cols"/> outputs
/// held in registers while k runs,
/// <code>
/// dst[r, j] = init[r, j] + sum over k &lt; kc of a[r * MicroKernel.AStride + k] * b[k * ldb + j]    (init null: 0)
/// </code>
/// for r &lt; rows, j &lt; cols. Each output is one chain of fused multiply-adds in k order starting from init (or 0), so
/// the result never depends on how the caller blocked M, N or K, nor on the instruction set: every path is bitwise
/// identical. a holds 12 rows (rows past <c>rows</c> are read, so they must be readable; zeros keep them cheap),
/// b holds 32 readable floats per k row; init and dst are 12 x 32 blocks (row strides ldi, ldd) of which entries
/// past rows/cols may be read or written.
/// </summary>
internal unsafe interface IMicroKernel
{
    static abstract void Compute(int rows, int cols, float* a, float* b, int ldb, int kc, float* init, int ldi, float* dst, int ldd);
}

internal static class MicroKernel
{
    /// <summary>Rows of A per block; a multiple of every path's register-tile height (12, 6, 4).</summary>
    public const int Rows = 12;

    /// <summary>Columns per block: one <see cref="PackedMatrix"/> panel.</summary>
    public const int Cols = PackedMatrix.PanelWidth;

    /// <summary>Longest K range per call; callers block K in ranges of at most this.</summary>
    public const int KcMax = 512;

    /// <summary>
    /// Row stride of packed A, in floats: a compile-time constant so all 12 row addresses are one register plus an
    /// immediate; 16 past <see cref="KcMax"/> so the rows fall in different L1 sets.
    /// </summary>
    public const int AStride = KcMax + 16;
}

/// <summary>A compile-time integer: a struct type argument the JIT folds, so each instantiation is a specialized kernel.</summary>
internal interface IConstant
{
    static abstract int Value { get; }
}

internal struct C1 : IConstant { public static int Value => 1; }
internal struct C2 : IConstant { public static int Value => 2; }
internal struct C3 : IConstant { public static int Value => 3; }
internal struct C4 : IConstant { public static int Value => 4; }
internal struct C6 : IConstant { public static int Value => 6; }
internal struct C8 : IConstant { public static int Value => 8; }
internal struct C12 : IConstant { public static int Value => 12; }
