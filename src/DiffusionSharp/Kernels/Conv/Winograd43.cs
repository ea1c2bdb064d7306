namespace DiffusionSharp.Kernels.Conv;

/// <summary>
/// The transforms of Winograd's minimal filtering algorithm F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for
/// Convolutional Neural Networks", 2016), interpolation points 0, 1, -1, 2, -2 and infinity: a 4x4 output tile of a
/// 3x3 stride-1 convolution is
/// <code>
/// Y = Aᵀ [ Σ over ci of (G g Gᵀ) ⊙ (Bᵀ d B) ] A       d: the 6x6 input tile, g: the 3x3 filter, ⊙: elementwise
/// </code>
/// so 36 multiplies per output tile and channel pair replace the direct convolution's 144. These are the matrices as
/// written in the paper, in double; the reference twins (kernel and filter transform) use them as matrices, the fast
/// kernel and filter transform as the hand-expanded sums in <c>Conv2dKernel.Winograd.cs</c> and
/// <c>WinogradWeights.Transform.cs</c>.
/// With these points the fp32 kernel's error against the fp32 implicit GEMM at SD's channel counts (320-640, weights
/// scaled as trained) is at most about 1e-4 of the output's RMS, 4-5e-6 as an RMS (docs/KERNELS.md). Points ±1/2 in
/// place of ±2 (a common alternative) were not tried.
/// </summary>
internal static class Winograd43
{
    /// <summary>Output tile side.</summary>
    public const int OutputTile = 4;

    /// <summary>Input tile side: 4 + 3 - 1.</summary>
    public const int InputTile = 6;

    /// <summary>Elements of a transformed tile (6 x 6): the number of independent GEMMs.</summary>
    public const int Points = InputTile * InputTile;

    /// <summary>Bᵀ [6, 6]: the input transform.</summary>
    public static readonly double[,] BT =
    {
        { 4, 0, -5, 0, 1, 0 },
        { 0, -4, -4, 1, 1, 0 },
        { 0, 4, -4, -1, 1, 0 },
        { 0, -2, -1, 2, 1, 0 },
        { 0, 2, -1, -2, 1, 0 },
        { 0, 4, 0, -5, 0, 1 },
    };

    /// <summary>G [6, 3]: the filter transform.</summary>
    public static readonly double[,] G =
    {
        { 1.0 / 4, 0, 0 },
        { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
        { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
        { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
        { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
        { 0, 0, 1 },
    };

    /// <summary>Aᵀ [4, 6]: the output transform.</summary>
    public static readonly double[,] AT =
    {
        { 1, 1, 1, 1, 1, 0 },
        { 0, 1, -1, 2, -2, 0 },
        { 0, 1, 1, 4, 4, 0 },
        { 0, 1, -1, 8, -8, 1 },
    };

    /// <summary>L M Rᵀ for L [a, n], M [n, n], R [b, n]: the two-sided transform every stage applies.</summary>
    public static double[,] Sandwich(double[,] left, double[,] m, double[,] right)
    {
        int a = left.GetLength(0), n = left.GetLength(1), b = right.GetLength(0);
        var t = new double[a, n];
        for (int i = 0; i < a; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int k = 0; k < n; k++) s += left[i, k] * m[k, j];
            t[i, j] = s;
        }
        var r = new double[a, b];
        for (int i = 0; i < a; i++)
        for (int j = 0; j < b; j++)
        {
            double s = 0;
            for (int k = 0; k < n; k++) s += t[i, k] * right[j, k];
            r[i, j] = s;
        }
        return r;
    }
}
