using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Caching;

/// <summary>A white RGB canvas with the few primitives a line chart needs: pixels, rectangles, lines and 5x7 text.</summary>
internal sealed class PlotCanvas(int width, int height)
{
    private readonly byte[] _pixels = Enumerable.Repeat((byte)255, width * height * 3).ToArray();

    public int Width { get; } = width;
    public int Height { get; } = height;

    public RgbImage ToImage() => new(Width, Height, _pixels);

    public void Set(int x, int y, (byte R, byte G, byte B) color)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) return;
        int i = (y * Width + x) * 3;
        (_pixels[i], _pixels[i + 1], _pixels[i + 2]) = color;
    }

    public void FillRectangle(int x0, int y0, int x1, int y1, (byte, byte, byte) color)
    {
        for (int y = Math.Min(y0, y1); y <= Math.Max(y0, y1); y++)
            for (int x = Math.Min(x0, x1); x <= Math.Max(x0, x1); x++)
                Set(x, y, color);
    }

    public void Rectangle(int x0, int y0, int x1, int y1, (byte, byte, byte) color)
    {
        Line(x0, y0, x1, y0, color);
        Line(x1, y0, x1, y1, color);
        Line(x1, y1, x0, y1, color);
        Line(x0, y1, x0, y0, color);
    }

    /// <summary>Bresenham's line, both ends included.</summary>
    public void Line(int x0, int y0, int x1, int y1, (byte, byte, byte) color)
    {
        int dx = Math.Abs(x1 - x0), dy = -Math.Abs(y1 - y0);
        int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, error = dx + dy;
        while (true)
        {
            Set(x0, y0, color);
            if (x0 == x1 && y0 == y1) return;
            int e2 = 2 * error;
            if (e2 >= dy) { error += dy; x0 += sx; }
            if (e2 <= dx) { error += dx; y0 += sy; }
        }
    }

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y), each font pixel <paramref name="scale"/> pixels wide.</summary>
    public void Text(int x, int y, string text, (byte, byte, byte) color, int scale = 1)
    {
        foreach (char c in text)
        {
            for (int gy = 0; gy < PlotFont.Height; gy++)
                for (int gx = 0; gx < PlotFont.Width; gx++)
                    if (PlotFont.IsSet(c, gx, gy))
                        FillRectangle(x + gx * scale, y + gy * scale, x + (gx + 1) * scale - 1, y + (gy + 1) * scale - 1, color);
            x += (PlotFont.Width + 1) * scale;
        }
    }

    public static int TextWidth(string text, int scale = 1) => text.Length * (PlotFont.Width + 1) * scale;
}
