namespace DiffusionSharp.Kernels.Elementwise;

/// <summary>
/// The unfused twin of the GEMM and convolution epilogue (<see cref="Fusion.Epilogue"/> off, and
/// <see cref="Fusion.TimestepEmbedding"/> off for the per-image bias): after a product has written its bare result,
/// each added term is its own pass over the [rows, cols] output, as a naive engine runs them. Same sums as the fused
/// epilogue, in the same order (bias, image bias, residual), so results agree to the rounding of the additions.
/// </summary>
public static unsafe class EpiloguePasses
{
    /// <summary>
    /// product [rows, cols] += bias [cols] (one pass), += imageBias [rows / imageRows, cols] (one pass), then
    /// y = product + residual [rows, cols] (one pass; without a residual y must be <paramref name="product"/>).
    /// <paramref name="residual"/> may alias y; y must not overlap product unless it is product.
    /// </summary>
    public static void Apply(float* product, long rows, int cols, float* bias, float* imageBias, long imageRows, float* residual, float* y)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"Epilogue passes: invalid shape [{rows}, {cols}].");
        if (imageBias != null && (imageRows <= 0 || rows % imageRows != 0))
            throw new ArgumentException($"Epilogue passes: {rows} rows are not whole images of {imageRows} rows.");
        if (residual == null && y != product) throw new ArgumentException("Epilogue passes: without a residual the output is the product itself.");
        if (bias != null) TensorOps.AddRowVector(product, rows, cols, bias);                        // [rows, cols]
        if (imageBias != null)
            for (long image = 0; image < rows / imageRows; image++)
                TensorOps.AddRowVector(product + image * imageRows * cols, imageRows, cols, imageBias + image * cols); // [rows, cols]
        if (residual != null) TensorOps.Add(product, residual, y, rows * cols);                    // [rows, cols]
    }
}
