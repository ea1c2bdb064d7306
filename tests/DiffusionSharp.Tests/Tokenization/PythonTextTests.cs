using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Tests.Tokenization;

/// <summary>
/// The C# ports of the CPython functions CLIP's cleanup calls, against CPython's own results on targeted and
/// seeded-random strings (python_text.json, written by tools/fixtures/tokenizer_reference.py).
/// </summary>
public class PythonTextTests
{
    [Fact]
    public void Lower_MatchesStrLower() => AssertAll("lower", PythonText.Lower);

    [Fact]
    public void Nfc_MatchesUnicodedataNormalize() => AssertAll("nfc", Nfc.Normalize);

    [Fact]
    public void Unescape_MatchesHtmlUnescape() => AssertAll("html_unescape", HtmlEntities.Unescape);

    [Fact]
    public void Strip_MatchesStrStrip() => AssertAll("strip", PythonText.Strip);

    [Theory]
    [InlineData("a \t\n\r\u000b\u000c b", "a b")]
    [InlineData("\u00a0a\u3000\u2028b\u0085", "a b")]
    [InlineData("a\u001cb\u200bc", "a\u001cb\u200bc")] // not \s for the regex module: U+001C..U+001F, zero-width space
    [InlineData("\u001c a \u001f", "a")]                // but str.strip() removes U+001C..U+001F
    public void CollapseWhitespace_IsClipsWhitespaceClean(string text, string expected) =>
        Assert.Equal(expected, PythonText.CollapseWhitespace(text));

    private static void AssertAll(string section, Func<string, string> port)
    {
        var pairs = TokenizerFixtures.Pairs(section).ToArray();
        Assert.NotEmpty(pairs);
        foreach (var (input, expected) in pairs)
        {
            string actual = port(input);
            Assert.True(expected == actual,
                $"{section}({TokenizerFixtures.Show(input)}): CPython {TokenizerFixtures.Show(expected)}, ours {TokenizerFixtures.Show(actual)}");
        }
    }
}
