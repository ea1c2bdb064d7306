using System.Text;

namespace DiffusionSharp.Tokenization;

/// <summary>The Python string semantics CLIP's text cleanup relies on: <c>\s</c>, <c>str.strip()</c>, <c>str.lower()</c>.</summary>
internal static class PythonText
{
    /// <summary>
    /// <c>\s</c> of the <c>regex</c> module on str patterns: Unicode White_Space minus the separators U+001C..U+001F
    /// (checked against regex 2026.5 over all code points).
    /// </summary>
    public static bool IsRegexSpace(int c) => c switch
    {
        >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or >= 0x2000 and <= 0x200A
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    /// <summary><c>str.isspace()</c>, which <c>str.strip()</c> uses: <see cref="IsRegexSpace"/> plus U+001C..U+001F.</summary>
    public static bool IsStripSpace(int c) => IsRegexSpace(c) || c is >= 0x1C and <= 0x1F;

    /// <summary><c>str.strip()</c> with no argument. Every such space is a single UTF-16 unit.</summary>
    public static string Strip(string text)
    {
        int start = 0, end = text.Length;
        while (start < end && IsStripSpace(text[start])) start++;
        while (end > start && IsStripSpace(text[end - 1])) end--;
        return start == 0 && end == text.Length ? text : text[start..end];
    }

    /// <summary><c>re.sub(r'\s+', ' ', text).strip()</c>, CLIP's <c>whitespace_clean</c>.</summary>
    public static string CollapseWhitespace(string text)
    {
        var result = new StringBuilder(text.Length);
        bool inSpace = false;
        foreach (char c in text)
        {
            if (IsRegexSpace(c))
            {
                if (!inSpace) result.Append(' ');
                inSpace = true;
            }
            else
            {
                result.Append(c);
                inSpace = false;
            }
        }
        return Strip(result.ToString());
    }

    /// <summary>
    /// <c>str.lower()</c>: the full lower-case mapping of CPython's Unicode tables ('İ' becomes "i̇"), and capital
    /// sigma becomes final 'ς' after a cased letter (case-ignorable characters skipped) when no cased letter
    /// follows, as CPython's <c>handle_capital_sigma</c> decides.
    /// </summary>
    public static string Lower(string text)
    {
        bool ascii = true;
        foreach (char c in text) if (c >= 0x80) { ascii = false; break; }
        if (ascii) return text.ToLowerInvariant();

        var tables = UnicodeTables.Instance;
        var runes = text.EnumerateRunes().Select(r => r.Value).ToArray();
        var result = new StringBuilder(text.Length);
        for (int i = 0; i < runes.Length; i++)
        {
            int c = runes[i];
            if (c == 0x03A3) result.Append(IsFinalSigma(runes, i, tables) ? 'ς' : 'σ');
            else if (tables.Lower.TryGetValue(c, out string? lower)) result.Append(lower);
            else result.Append(char.ConvertFromUtf32(c));
        }
        return result.ToString();
    }

    private static bool IsFinalSigma(int[] runes, int i, UnicodeTables tables)
    {
        int j = i - 1;
        while (j >= 0 && tables.IsSigmaIgnorable(runes[j])) j--;
        if (j < 0 || !tables.IsSigmaCased(runes[j])) return false;
        j = i + 1;
        while (j < runes.Length && tables.IsSigmaIgnorable(runes[j])) j++;
        return j == runes.Length || !tables.IsSigmaCased(runes[j]);
    }
}
