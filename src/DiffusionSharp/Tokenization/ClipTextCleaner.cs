namespace DiffusionSharp.Tokenization;

/// <summary>
/// CLIP's text cleanup before pre-tokenization, in <c>simple_tokenizer.py</c>'s order:
/// <c>whitespace_clean(basic_clean(text)).lower()</c>, where <c>basic_clean</c> is <c>ftfy.fix_text</c> (the
/// subset in <see cref="Ftfy"/>), <c>html.unescape</c> twice and <c>strip</c>, and <c>whitespace_clean</c> turns
/// each run of whitespace into one space and strips.
/// </summary>
internal static class ClipTextCleaner
{
    public static string Clean(string text)
    {
        text = Ftfy.FixText(text);
        text = HtmlEntities.Unescape(HtmlEntities.Unescape(text));
        text = PythonText.Strip(text);
        text = PythonText.CollapseWhitespace(text);
        return PythonText.Lower(text);
    }
}
