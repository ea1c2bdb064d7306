using System.Globalization;
using DiffusionSharp.IO.Png;

namespace DiffusionSharp.Caching;

/// <summary>
/// Draws <see cref="ChangeCurves"/> as a PNG a person can read: one small panel per block, in execution order, all on
/// the same logarithmic y axis (decades labelled) against the evaluation index; a dark line for the mean change, a
/// light band for +-1 standard deviation over the profiled images, and, when a schedule is given, a red tick under
/// each evaluation at which that block runs.
/// </summary>
public static class ChangeCurvePlot
{
    private const int Columns = 4;
    private const int PanelWidth = 280, PanelHeight = 150;
    private const int MarginLeft = 34, MarginRight = 8, MarginTop = 14, MarginBottom = 18;
    private const int HeaderHeight = 44;

    private static readonly (byte, byte, byte) Black = (0, 0, 0), Grey = (225, 225, 225), DarkGrey = (90, 90, 90);
    private static readonly (byte, byte, byte) Line = (20, 60, 170), Band = (185, 205, 240), Red = (210, 30, 30);

    public static RgbImage Render(ChangeCurves curves, CacheSchedule? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(curves);
        if (curves.Evaluations < 2) throw new ArgumentException("A change curve needs at least 2 evaluations.", nameof(curves));
        int blocks = curves.Keys.Count;
        int columns = Math.Min(Columns, blocks), rows = (blocks + columns - 1) / columns;
        var canvas = new PlotCanvas(columns * PanelWidth, HeaderHeight + rows * PanelHeight);
        var (lo, hi) = Decades(curves);

        canvas.Text(6, 6, $"relative l1 change of each block's residual from the previous unet evaluation, log scale", Black, 1);
        canvas.Text(6, 18, string.Create(CultureInfo.InvariantCulture,
            $"line: mean, band: +-1 std over {curves.Samples} images x batch items; x: evaluation 1..{curves.Evaluations - 1}"), Black, 1);
        if (schedule is not null)
            canvas.Text(6, 30, string.Create(CultureInfo.InvariantCulture,
                $"red ticks: evaluations a block runs at delta {schedule.Delta ?? double.NaN:0.###} ({schedule.SkippedBlockEvaluations} of {blocks * curves.Evaluations} block runs skipped)"), Red, 1);

        for (int i = 0; i < blocks; i++)
        {
            int px = i % columns * PanelWidth, py = HeaderHeight + i / columns * PanelHeight;
            DrawPanel(canvas, px, py, curves, i, lo, hi, schedule?.Blocks[i].Recompute);
        }
        return canvas.ToImage();
    }

    private static void DrawPanel(PlotCanvas canvas, int px, int py, ChangeCurves curves, int block, int lo, int hi, bool[]? recompute)
    {
        int x0 = px + MarginLeft, x1 = px + PanelWidth - MarginRight, y0 = py + MarginTop, y1 = py + PanelHeight - MarginBottom;
        int last = curves.Evaluations - 1;
        int X(int e) => last == 1 ? (x0 + x1) / 2 : x0 + (int)Math.Round((double)(e - 1) / (last - 1) * (x1 - x0));
        int Y(double v)
        {
            double t = (Math.Log10(Math.Max(v, Math.Pow(10, lo))) - lo) / (hi - lo);
            return y1 - (int)Math.Round(Math.Clamp(t, 0, 1) * (y1 - y0));
        }

        for (int d = lo; d <= hi; d++)
        {
            int y = Y(Math.Pow(10, d));
            canvas.Line(x0, y, x1, y, Grey);
            string label = "1e" + d.ToString(CultureInfo.InvariantCulture);
            canvas.Text(x0 - 3 - PlotCanvas.TextWidth(label), y - 3, label, DarkGrey);
        }
        string title = string.Create(CultureInfo.InvariantCulture, $"{curves.Keys[block]} ({curves.Channels[block]})");
        canvas.Text(x0, py + 3, title, Black);

        double[] mean = curves.Mean[block], std = curves.Std[block];
        for (int e = 1; e <= last; e++)
            canvas.Line(X(e), Y(mean[e] + std[e]), X(e), Y(mean[e] - std[e]), Band);
        for (int e = 1; e < last; e++)
            canvas.Line(X(e), Y(mean[e]), X(e + 1), Y(mean[e + 1]), Line);
        if (recompute is not null)
        {
            for (int e = 1; e <= last; e++)
                if (recompute[e]) canvas.Line(X(e), y1 + 2, X(e), y1 + 6, Red);
        }
        canvas.Rectangle(x0, y0, x1, y1, DarkGrey);
        canvas.Text(x0, y1 + 9, "1", DarkGrey);
        string end = last.ToString(CultureInfo.InvariantCulture);
        canvas.Text(x1 - PlotCanvas.TextWidth(end) + 1, y1 + 9, end, DarkGrey);
    }

    /// <summary>The decades the y axis spans: from the smallest positive mean - std to the largest mean + std (at least one).</summary>
    private static (int Lo, int Hi) Decades(ChangeCurves curves)
    {
        double min = double.PositiveInfinity, max = 0;
        for (int i = 0; i < curves.Keys.Count; i++)
            for (int e = 1; e < curves.Evaluations; e++)
            {
                double m = curves.Mean[i][e], s = curves.Std[i][e];
                if (m > 0) min = Math.Min(min, Math.Max(m - s, m / 10));
                max = Math.Max(max, m + s);
            }
        if (!(max > 0)) return (-3, 0);
        int lo = Math.Max(-6, (int)Math.Floor(Math.Log10(min))), hi = (int)Math.Ceiling(Math.Log10(max));
        return (lo, Math.Max(hi, lo + 1));
    }
}
