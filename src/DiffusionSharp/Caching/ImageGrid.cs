using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Caching;

/// <summary>
/// A labelled picture grid for comparing runs: one row per run (its label on the left), one column per prompt,
/// each image scaled by nearest neighbour to fit a <c>cellSize</c> square.
/// </summary>
public static class ImageGrid
{
    private const int LabelWidth = 180, Gap = 4;

    public static RgbImage Compose(IReadOnlyList<(string Label, IReadOnlyList<RgbImage> Images)> rows, int cellSize)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(cellSize, 8);
        if (rows.Count == 0) throw new ArgumentException("A grid needs at least one row.", nameof(rows));
        int columns = rows.Max(r => r.Images.Count);
        var canvas = new PlotCanvas(LabelWidth + columns * (cellSize + Gap) + Gap, rows.Count * (cellSize + Gap) + Gap);
        for (int r = 0; r < rows.Count; r++)
        {
            int y = Gap + r * (cellSize + Gap);
            canvas.Text(6, y + cellSize / 2 - 4, rows[r].Label, (0, 0, 0));
            for (int c = 0; c < rows[r].Images.Count; c++)
                Blit(canvas, rows[r].Images[c], LabelWidth + Gap + c * (cellSize + Gap), y, cellSize);
        }
        return canvas.ToImage();
    }

    private static void Blit(PlotCanvas canvas, RgbImage image, int x0, int y0, int size)
    {
        double scale = Math.Min((double)size / image.Width, (double)size / image.Height);
        int w = Math.Max(1, (int)(image.Width * scale)), h = Math.Max(1, (int)(image.Height * scale));
        for (int y = 0; y < h; y++)
        {
            int sy = Math.Min(image.Height - 1, (int)(y / scale));
            for (int x = 0; x < w; x++)
            {
                int sx = Math.Min(image.Width - 1, (int)(x / scale));
                int i = (sy * image.Width + sx) * 3;
                canvas.Set(x0 + x, y0 + y, (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]));
            }
        }
    }
}
