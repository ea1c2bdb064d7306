namespace DiffusionSharp.IO.Png;

/// <summary>
/// The five PNG row filters (PNG spec section 9): 0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth, over bytes with
/// <c>bpp</c> bytes per complete pixel; the row above the first is all zeros.
/// </summary>
internal static class PngFilters
{
    public const int Count = 5;

    /// <summary>Filters <paramref name="row"/> with <paramref name="type"/> into <paramref name="destination"/>.</summary>
    public static void Filter(int type, ReadOnlySpan<byte> row, ReadOnlySpan<byte> prior, int bpp, Span<byte> destination)
    {
        for (int i = 0; i < row.Length; i++)
        {
            int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
            destination[i] = (byte)(row[i] - Predict(type, a, b, c));
        }
    }

    /// <summary>Reverses <see cref="Filter"/> in place; <paramref name="prior"/> is the previous row, already reconstructed.</summary>
    public static void Unfilter(int type, Span<byte> row, ReadOnlySpan<byte> prior, int bpp)
    {
        switch (type)
        {
            case 0:
                break;
            case 1:
                for (int i = bpp; i < row.Length; i++) row[i] += row[i - bpp];
                break;
            case 2:
                for (int i = 0; i < row.Length; i++) row[i] += prior[i];
                break;
            default:
                for (int i = 0; i < row.Length; i++)
                {
                    int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
                    row[i] += (byte)Predict(type, a, b, c);
                }
                break;
        }
    }

    /// <summary>The predictor of filter <paramref name="type"/> from the left (a), above (b) and upper-left (c) bytes.</summary>
    public static int Predict(int type, int a, int b, int c) => type switch
    {
        0 => 0,
        1 => a,
        2 => b,
        3 => (a + b) >> 1,
        4 => Paeth(a, b, c),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "PNG filter types are 0-4."),
    };

    /// <summary>Paeth predictor: whichever of a, b, c is closest to a + b - c, ties to a, then b.</summary>
    public static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    /// <summary>
    /// The filter with the smallest sum of filtered bytes read as signed values (the "minimum sum of absolute
    /// differences" heuristic the PNG spec recommends and libpng uses); ties go to the lower type.
    /// Writes the filtered row into <paramref name="destination"/>; <paramref name="scratch"/> holds one row.
    /// </summary>
    public static int FilterAdaptive(ReadOnlySpan<byte> row, ReadOnlySpan<byte> prior, int bpp, Span<byte> destination, Span<byte> scratch)
    {
        int best = -1;
        long bestSum = long.MaxValue;
        for (int type = 0; type < Count; type++)
        {
            Filter(type, row, prior, bpp, scratch);
            long sum = 0;
            foreach (byte v in scratch) sum += Math.Abs((int)(sbyte)v);
            if (sum < bestSum)
            {
                bestSum = sum;
                best = type;
                scratch.CopyTo(destination);
            }
        }
        return best;
    }
}
