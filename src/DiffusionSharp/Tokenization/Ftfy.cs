using System.Globalization;
using System.Text;

namespace DiffusionSharp.Tokenization;

/// <summary>
/// The part of <c>ftfy.fix_text</c> (ftfy 6.3, default configuration) that changes prompts, ported from its
/// sources. Text is fixed per line (each segment ends after a '\n'); each segment goes through the fixers in
/// ftfy's order, repeated until nothing changes:
/// unescape_html (skipped from the first line containing '&lt;' on), fix_c1_controls, fix_latin_ligatures,
/// fix_character_width, uncurl_quotes, fix_line_breaks, fix_surrogates, remove_terminal_escapes,
/// remove_control_chars, NFC.
/// Not ported: <c>fix_encoding</c>, the mojibake detector and repair (e.g. "cafÃ©" -> "café"); such text passes
/// through unchanged here. It never changes ASCII text.
/// </summary>
internal static class Ftfy
{
    /// <summary>
    /// The C1 controls U+0080..U+009F read as Windows-1252, as ftfy's "sloppy-windows-1252" does: the five bytes
    /// Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) stay as they are.
    /// </summary>
    private const string Windows1252C1 =
        "\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F" +
        "\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178";

    /// <summary>ftfy.chardata.LIGATURES: Latin typographic ligatures and legacy digraphs, split.</summary>
    private static readonly Dictionary<char, string> s_ligatures = new()
    {
        ['Ĳ'] = "IJ", ['ĳ'] = "ij", ['ŉ'] = "ʼn", ['Ǳ'] = "DZ", ['ǲ'] = "Dz", ['ǳ'] = "dz", ['Ǆ'] = "DŽ", ['ǅ'] = "Dž",
        ['ǆ'] = "dž", ['Ǉ'] = "LJ", ['ǈ'] = "Lj", ['ǉ'] = "lj", ['Ǌ'] = "NJ", ['ǋ'] = "Nj", ['ǌ'] = "nj",
        ['ﬀ'] = "ff", ['ﬁ'] = "fi", ['ﬂ'] = "fl", ['ﬃ'] = "ffi", ['ﬄ'] = "ffl", ['ﬅ'] = "ſt", ['ﬆ'] = "st",
    };

    public static string FixText(string text)
    {
        var result = new StringBuilder(text.Length);
        bool unescapeHtml = true; // "auto": off from the first segment holding a '<' (the text may be HTML) on
        int position = 0;
        while (position < text.Length)
        {
            int lineBreak = text.IndexOf('\n', position);
            int end = lineBreak < 0 ? text.Length : lineBreak + 1;
            string segment = text[position..end];
            if (unescapeHtml && segment.Contains('<')) unescapeHtml = false;
            result.Append(FixSegment(segment, unescapeHtml));
            position = end;
        }
        return result.ToString();
    }

    /// <summary>
    /// One segment, fixers repeated to a fixed point (ftfy's <c>fix_and_explain</c> loop). It ends: each pass that
    /// changes anything either shortens the text (entities, escapes, controls) or maps characters into ones that
    /// no fixer maps again.
    /// </summary>
    private static string FixSegment(string text, bool unescapeHtml)
    {
        while (true)
        {
            string original = text;
            if (unescapeHtml) text = HtmlEntities.FtfyUnescape(text);
            text = FixC1Controls(text);
            text = Translate(text, static c => s_ligatures.TryGetValue(c, out string? s) ? s : null);
            text = Translate(text, static c => c is '\u3000' or (>= '\uFF01' and <= '\uFFEF') && UnicodeTables.Instance.Width.TryGetValue(c, out string? s) ? s : null);
            text = Translate(text, static c => c switch
            {
                '\u02BC' or (>= '\u2018' and <= '\u201B') => "'",
                >= '\u201C' and <= '\u201F' => "\"",
                _ => null,
            });
            text = FixLineBreaks(text);
            text = FixSurrogates(text);
            text = RemoveTerminalEscapes(text);
            text = Translate(text, static c => IsControlToRemove(c) ? "" : null);
            text = Nfc.Normalize(text);
            if (text == original) return text;
        }
    }

    private static string FixC1Controls(string text) =>
        Translate(text, static c => c is >= '\u0080' and <= '\u009F' ? Windows1252C1[c - 0x80].ToString() : null);

    private static string FixLineBreaks(string text) =>
        text.Replace("\r\n", "\n").Replace('\r', '\n').Replace('\u2028', '\n').Replace('\u2029', '\n').Replace('\u0085', '\n');

    /// <summary>A surrogate without its partner becomes U+FFFD (pairs are already whole characters in .NET).</summary>
    private static string FixSurrogates(string text)
    {
        StringBuilder? result = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool paired = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            if (paired)
            {
                result?.Append(c).Append(text[i + 1]);
                i++;
                continue;
            }
            if (char.IsSurrogate(c))
            {
                result ??= new StringBuilder(text.Length).Append(text, 0, i);
                result.Append('\uFFFD');
                continue;
            }
            result?.Append(c);
        }
        return result?.ToString() ?? text;
    }

    /// <summary>ftfy's ANSI_RE: ESC '[' then any run of decimal digits (\d, any script) and ';', then an ASCII letter.</summary>
    private static string RemoveTerminalEscapes(string text)
    {
        int escape = text.IndexOf("\u001B[", StringComparison.Ordinal);
        if (escape < 0) return text;
        var result = new StringBuilder(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            if (text[i] == '\u001B' && i + 1 < text.Length && text[i + 1] == '[')
            {
                int end = i + 2;
                while (end < text.Length)
                {
                    Rune.DecodeFromUtf16(text.AsSpan(end), out var rune, out int length);
                    if (rune.Value != ';' && Rune.GetUnicodeCategory(rune) != UnicodeCategory.DecimalDigitNumber) break;
                    end += length;
                }
                if (end < text.Length && char.IsAsciiLetter(text[end]))
                {
                    i = end + 1;
                    continue;
                }
            }
            result.Append(text[i++]);
        }
        return result.ToString();
    }

    /// <summary>ftfy.chardata.CONTROL_CHARS: C0 controls but tab, LF, FF and CR; DEL; deprecated format characters; BOM; interlinear annotation.</summary>
    private static bool IsControlToRemove(char c) =>
        c is <= '\u0008' or '\u000B' or (>= '\u000E' and <= '\u001F') or '\u007F'
            or (>= '\u206A' and <= '\u206F') or '\uFEFF' or (>= '\uFFF9' and <= '\uFFFC');

    /// <summary>str.translate over UTF-16 units: each unit mapped to a replacement (null keeps it). All keys are BMP.</summary>
    private static string Translate(string text, Func<char, string?> map)
    {
        StringBuilder? result = null;
        for (int i = 0; i < text.Length; i++)
        {
            string? replacement = map(text[i]);
            if (replacement is null)
            {
                result?.Append(text[i]);
                continue;
            }
            result ??= new StringBuilder(text.Length + 16).Append(text, 0, i);
            result.Append(replacement);
        }
        return result?.ToString() ?? text;
    }
}
