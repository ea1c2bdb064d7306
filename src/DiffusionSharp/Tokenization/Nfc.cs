using System.Text;

namespace DiffusionSharp.Tokenization;

/// <summary>
/// Unicode normalization form C (UAX #15) as CPython's <c>unicodedata.normalize("NFC", s)</c> computes it, over
/// the embedded <see cref="UnicodeTables"/>: full canonical decomposition, canonical ordering of combining marks,
/// then canonical composition with the primary composites and algorithmic Hangul.
/// </summary>
internal static class Nfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    public static string Normalize(string text)
    {
        // Nothing below U+0300 decomposes or composes with a neighbour: most prompts stop here.
        bool quick = true;
        foreach (char c in text) if (c >= 0x300) { quick = false; break; }
        if (quick) return text;

        var tables = UnicodeTables.Instance;
        var decomposed = new List<int>(text.Length + 8);
        foreach (var rune in text.EnumerateRunes()) Decompose(rune.Value, tables, decomposed);
        SortCombiningMarks(decomposed, tables);
        Compose(decomposed, tables);

        var result = new StringBuilder(decomposed.Count);
        foreach (int c in decomposed) result.Append(char.ConvertFromUtf32(c));
        string normalized = result.ToString();
        return normalized == text ? text : normalized;
    }

    private static void Decompose(int c, UnicodeTables tables, List<int> output)
    {
        if (c >= SBase && c < SBase + SCount)
        {
            int s = c - SBase;
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
        }
        else if (tables.Decomposition.TryGetValue(c, out int[]? parts))
        {
            foreach (int part in parts) Decompose(part, tables, output);
        }
        else
        {
            output.Add(c);
        }
    }

    private static int ClassOf(int c, UnicodeTables tables) => tables.CombiningClass.TryGetValue(c, out byte ccc) ? ccc : 0;

    /// <summary>Stable sort of each run of non-starters by combining class (insertion sort: runs are short).</summary>
    private static void SortCombiningMarks(List<int> cps, UnicodeTables tables)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int c = cps[i], ccc = ClassOf(c, tables);
            if (ccc == 0) continue;
            int j = i - 1;
            while (j >= 0 && ClassOf(cps[j], tables) > ccc) { cps[j + 1] = cps[j]; j--; }
            cps[j + 1] = c;
        }
    }

    /// <summary>Canonical composition in place: each character joins the last starter unless a mark between blocks it.</summary>
    private static void Compose(List<int> cps, UnicodeTables tables)
    {
        if (cps.Count == 0) return;
        int starter = 0, written = 1;
        int lastClass = ClassOf(cps[0], tables) == 0 ? 0 : 256; // a leading mark composes with nothing
        for (int i = 1; i < cps.Count; i++)
        {
            int c = cps[i], ccc = ClassOf(c, tables);
            if ((lastClass < ccc || lastClass == 0) && TryCompose(cps[starter], c, tables, out int composite))
            {
                cps[starter] = composite;
                continue;
            }
            if (ccc == 0) starter = written;
            lastClass = ccc;
            cps[written++] = c;
        }
        cps.RemoveRange(written, cps.Count - written);
    }

    private static bool TryCompose(int first, int second, UnicodeTables tables, out int composite)
    {
        if (first >= LBase && first < LBase + LCount && second >= VBase && second < VBase + VCount)
        {
            composite = SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
            return true;
        }
        if (first >= SBase && first < SBase + SCount && (first - SBase) % TCount == 0 && second > TBase && second < TBase + TCount)
        {
            composite = first + (second - TBase);
            return true;
        }
        return tables.Composition.TryGetValue(UnicodeTables.CompositionKey(first, second), out composite);
    }
}
