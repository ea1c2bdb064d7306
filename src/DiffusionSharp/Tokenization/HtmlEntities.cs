using System.Text;

namespace DiffusionSharp.Tokenization;

/// <summary>
/// HTML character references decoded two ways, both over the tables in the embedded <c>html_entities.txt</c>
/// (generated from CPython's <c>html</c> module by <c>tools/fixtures/tokenizer_tables.py</c>):
/// <see cref="Unescape"/> is Python's <c>html.unescape</c> (what CLIP applies twice), and
/// <see cref="FtfyUnescape"/> is ftfy 6's <c>unescape_html</c> fixer.
/// </summary>
internal sealed class HtmlEntities
{
    private static readonly Lazy<HtmlEntities> s_instance = new(() => new HtmlEntities(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Longest name html.unescape's pattern takes after '&amp;' (in code points), before an optional ';'.</summary>
    private const int MaxNameLength = 32;

    /// <summary>Longest name ftfy's pattern <c>&amp;#?[0-9A-Za-z]{1,24};</c> takes.</summary>
    private const int MaxFtfyNameLength = 24;

    /// <summary>html.entities.html5: name (with its ';' where it has one) -> text.</summary>
    private readonly Dictionary<string, string> _html5 = new(StringComparer.Ordinal);

    /// <summary>ftfy's extra upper-cased names ("EACUTE;" -> "É").</summary>
    private readonly Dictionary<string, string> _ftfyUppercase = new(StringComparer.Ordinal);

    /// <summary>Numeric references html.unescape replaces (0 -> U+FFFD, 13 -> CR, 0x80..0x9F as Windows-1252).</summary>
    private readonly Dictionary<int, string> _invalidCharrefs = new();

    /// <summary>Numeric references html.unescape drops (controls, noncharacters).</summary>
    private readonly HashSet<int> _invalidCodepoints = new();

    private HtmlEntities()
    {
        foreach (var (section, f) in ClipResources.ReadTable(ClipResources.HtmlEntitiesFile))
        {
            switch (section)
            {
                case "html5": _html5.Add(f[0], ClipResources.Text(f, 1)); break;
                case "ftfy-uppercase": _ftfyUppercase.Add(f[0], ClipResources.Text(f, 1)); break;
                case "invalid-charrefs": _invalidCharrefs.Add(ClipResources.CodePoint(f[0]), ClipResources.Text(f, 1)); break;
                case "invalid-codepoints":
                    var (first, last) = ClipResources.CodePointRange(f[0]);
                    for (int c = first; c <= last; c++) _invalidCodepoints.Add(c);
                    break;
                default: throw new InvalidDataException($"{ClipResources.HtmlEntitiesFile}: unknown section [{section}].");
            }
        }
    }

    /// <summary>
    /// Python's <c>html.unescape</c>: every match of
    /// <c>&amp;(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f &lt;&amp;#;]{1,32};?)</c> is replaced. Numeric references go
    /// through the HTML5 error table; a name not in the table falls back to its longest prefix (at least two
    /// characters) that is a legacy name without ';' ("&amp;ampx" -> "&amp;x"), else stays as it is.
    /// </summary>
    public static string Unescape(string text)
    {
        int amp = text.IndexOf('&');
        if (amp < 0) return text;
        var entities = s_instance.Value;
        var result = new StringBuilder(text.Length);
        result.Append(text, 0, amp);
        int i = amp;
        while (i < text.Length)
        {
            if (text[i] != '&') { result.Append(text[i++]); continue; }
            int end = entities.MatchCharref(text, i, out string? replacement);
            if (end < 0) { result.Append('&'); i++; continue; }
            result.Append(replacement);
            i = end;
        }
        return result.ToString();
    }

    /// <summary>
    /// ftfy's <c>unescape_html</c>: each match of <c>&amp;#?[0-9A-Za-z]{1,24};</c> that is an HTML5 name with ';' or
    /// one of ftfy's upper-cased names is replaced; a numeric one is replaced by html.unescape's result unless
    /// that still contains a ';' (the reference was not consumed whole); anything else stays.
    /// </summary>
    public static string FtfyUnescape(string text)
    {
        int amp = text.IndexOf('&');
        if (amp < 0) return text;
        var entities = s_instance.Value;
        var result = new StringBuilder(text.Length);
        result.Append(text, 0, amp);
        int i = amp;
        while (i < text.Length)
        {
            if (text[i] != '&') { result.Append(text[i++]); continue; }
            int nameStart = i + 1 < text.Length && text[i + 1] == '#' && i + 2 < text.Length && char.IsAsciiLetterOrDigit(text[i + 2]) ? i + 2 : i + 1;
            int nameEnd = nameStart;
            while (nameEnd < text.Length && nameEnd - nameStart < MaxFtfyNameLength && char.IsAsciiLetterOrDigit(text[nameEnd])) nameEnd++;
            if (nameEnd == nameStart || nameEnd >= text.Length || text[nameEnd] != ';')
            {
                result.Append('&');
                i++;
                continue;
            }
            string reference = text[i..(nameEnd + 1)];
            string name = text[(i + 1)..(nameEnd + 1)];
            if (entities._html5.TryGetValue(name, out string? value)) result.Append(value);
            else if (entities._ftfyUppercase.TryGetValue(name, out value)) result.Append(value);
            else if (name[0] == '#' && Unescape(reference) is var unescaped && !unescaped.Contains(';')) result.Append(unescaped);
            else result.Append(reference);
            i = nameEnd + 1;
        }
        return result.ToString();
    }

    /// <summary>Matches a character reference at <paramref name="amp"/>; returns the index after it, or -1.</summary>
    private int MatchCharref(string text, int amp, out string? replacement)
    {
        replacement = null;
        int i = amp + 1;
        if (i >= text.Length) return -1;
        if (text[i] == '#')
        {
            bool hex = i + 1 < text.Length && text[i + 1] is 'x' or 'X';
            int digitsStart = hex ? i + 2 : i + 1;
            int end = digitsStart;
            while (end < text.Length && (hex ? char.IsAsciiHexDigit(text[end]) : char.IsAsciiDigit(text[end]))) end++;
            if (end == digitsStart) return -1; // "&#" or "&#x" without digits matches no alternative
            replacement = NumericReference(text.AsSpan(digitsStart, end - digitsStart), hex ? 16 : 10);
            return end < text.Length && text[end] == ';' ? end + 1 : end;
        }

        int nameEnd = i, codePoints = 0;
        while (nameEnd < text.Length && codePoints < MaxNameLength && text[nameEnd] is not ('\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';'))
        {
            nameEnd += char.IsHighSurrogate(text[nameEnd]) && nameEnd + 1 < text.Length && char.IsLowSurrogate(text[nameEnd + 1]) ? 2 : 1;
            codePoints++;
        }
        if (codePoints == 0) return -1;
        if (nameEnd < text.Length && text[nameEnd] == ';') nameEnd++;
        string name = text[i..nameEnd];
        if (_html5.TryGetValue(name, out string? value))
        {
            replacement = value;
        }
        else
        {
            replacement = "&" + name;
            // Longest prefix first, down to two characters; only legacy names (ASCII, no ';') can match.
            for (int x = name.Length - 1; x > 1; x--)
            {
                if (_html5.TryGetValue(name[..x], out value)) { replacement = value + name[x..]; break; }
            }
        }
        return nameEnd;
    }

    private string NumericReference(ReadOnlySpan<char> digits, int radix)
    {
        // Saturate: anything beyond U+10FFFF is replaced alike.
        long number = 0;
        foreach (char d in digits)
        {
            number = number * radix + (char.IsAsciiDigit(d) ? d - '0' : (d | 0x20) - 'a' + 10);
            if (number > 0x10FFFF) { number = 0x110000; }
        }
        int n = (int)number;
        if (_invalidCharrefs.TryGetValue(n, out string? replacement)) return replacement;
        if (n is >= 0xD800 and <= 0xDFFF || n > 0x10FFFF) return "\uFFFD";
        if (_invalidCodepoints.Contains(n)) return "";
        return char.ConvertFromUtf32(n);
    }
}
