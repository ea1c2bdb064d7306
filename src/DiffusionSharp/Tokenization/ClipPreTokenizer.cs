using System.Globalization;
using System.Text;

namespace DiffusionSharp.Tokenization;

/// <summary>
/// Splits cleaned text into the words BPE runs on, as CLIP's pattern does with Python's <c>regex</c> module:
/// <code>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</code>
/// with IGNORECASE. At each position the first alternative that matches wins; where none matches (whitespace) the
/// scan moves on one character. A hand-written scanner rather than .NET <c>Regex</c>, because three details differ:
/// <list type="bullet">
/// <item><c>\s</c> is the <c>regex</c> module's set (Unicode White_Space without U+001C..U+001F), not .NET's.</item>
/// <item>Under IGNORECASE 's' also matches 'ſ' (U+017F), so "'ſ" is a contraction.</item>
/// <item>Under IGNORECASE U+0345 (combining ypogegrammeni, whose upper case is a letter) matches neither the letter
/// class nor the negated class, so it is skipped like whitespace.</item>
/// </list>
/// Letters and numbers are the general categories L* and N* of .NET's Unicode tables; digits are single words.
/// </summary>
internal static class ClipPreTokenizer
{
    private static readonly string[] s_contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    private enum CharClass { Space, Letter, Number, Other }

    /// <summary>Appends each word of <paramref name="text"/> (already cleaned and lower-cased) to <paramref name="words"/>.</summary>
    public static void Split(string text, List<string> words)
    {
        int i = 0;
        while (i < text.Length)
        {
            int length = MatchLiteral(text, i, ClipVocabulary.StartText)
                         ?? MatchLiteral(text, i, ClipVocabulary.EndText)
                         ?? MatchContraction(text, i)
                         ?? MatchClassRun(text, i);
            if (length == 0)
            {
                i += RuneLength(text, i);
                continue;
            }
            words.Add(text.Substring(i, length));
            i += length;
        }
    }

    /// <summary>The length matched at <paramref name="start"/> by the letter, number or other-symbol alternatives (0 if none).</summary>
    private static int MatchClassRun(string text, int start)
    {
        var first = Classify(text, start);
        if (first == CharClass.Space) return 0;
        int end = start + RuneLength(text, start);
        if (first == CharClass.Number) return end - start; // [\p{N}]: one character
        while (end < text.Length && Classify(text, end) == first) end += RuneLength(text, end);
        return end - start;
    }

    private static int? MatchContraction(string text, int start)
    {
        if (text[start] != '\'') return null;
        foreach (string contraction in s_contractions)
            if (MatchLiteral(text, start, contraction) is { } length) return length;
        return null;
    }

    /// <summary>Case-insensitive match of an ASCII literal as the <c>regex</c> module does it on lower-cased text.</summary>
    private static int? MatchLiteral(string text, int start, string literal)
    {
        if (text.Length - start < literal.Length) return null;
        for (int k = 0; k < literal.Length; k++)
        {
            char c = text[start + k], expected = literal[k];
            if (c != expected && char.ToLowerInvariant(c) != expected && !(expected == 's' && c == '\u017F')) return null;
        }
        return literal.Length;
    }

    private static CharClass Classify(string text, int index)
    {
        Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out _);
        if (rune.Value == 0x0345 || PythonText.IsRegexSpace(rune.Value)) return CharClass.Space;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }

    private static int RuneLength(string text, int index) =>
        char.IsHighSurrogate(text[index]) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1]) ? 2 : 1;
}
