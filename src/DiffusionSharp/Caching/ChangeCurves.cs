namespace DiffusionSharp.Caching;

/// <summary>
/// Measured change curves of a UNet's hooked blocks (<see cref="ChangeCurveRecorder"/>): for block i and evaluation e,
/// the relative L1 change of the block's residual contribution r from evaluation e-1 to e,
/// <c>sum|r_e - r_(e-1)| / sum|r_e|</c> per batch item, averaged over batch items and prompts (<see cref="Mean"/>) with
/// its standard deviation (<see cref="Std"/>). Evaluation 0 has no predecessor: NaN.
/// </summary>
public sealed record ChangeCurves(IReadOnlyList<string> Keys, IReadOnlyList<int> Channels, int Evaluations, double[][] Mean, double[][] Std, int Samples)
{
    /// <summary>The curves as CSV: <c>block,channels,evaluation,l1_rel_mean,l1_rel_std</c>, one row per block and evaluation from 1.</summary>
    public string ToCsv()
    {
        var sb = new System.Text.StringBuilder("block,channels,evaluation,l1_rel_mean,l1_rel_std\n");
        var c = System.Globalization.CultureInfo.InvariantCulture;
        for (int i = 0; i < Keys.Count; i++)
            for (int e = 1; e < Evaluations; e++)
                sb.Append(c, $"{Keys[i]},{Channels[i]},{e},{Mean[i][e]:R},{Std[i][e]:R}\n");
        return sb.ToString();
    }
}
