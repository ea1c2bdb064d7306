using System.Globalization;

namespace DiffusionSharp.Tokenization;

/// <summary>The tokenizer's files embedded from <c>src/DiffusionSharp/Resources/clip/</c>.</summary>
internal static class ClipResources
{
    public const string MergesFile = "bpe_simple_vocab_16e6.txt.gz";
    public const string UnicodeTablesFile = "unicode_tables.txt";
    public const string HtmlEntitiesFile = "html_entities.txt";

    public static Stream Open(string fileName) =>
        typeof(ClipResources).Assembly.GetManifestResourceStream("DiffusionSharp.Resources.clip." + fileName)
        ?? throw new InvalidOperationException($"The embedded resource Resources/clip/{fileName} is missing from DiffusionSharp.dll.");

    /// <summary>
    /// Reads one of the generated table files (see <c>tools/fixtures/tokenizer_tables.py</c>): '#' comment lines,
    /// <c>[section]</c> headers, and data lines of space-separated fields. Yields (section, fields) per data line.
    /// </summary>
    public static IEnumerable<(string Section, string[] Fields)> ReadTable(string fileName)
    {
        using var reader = new StreamReader(Open(fileName));
        string section = "";
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            if (line[0] == '[') { section = line[1..^1]; continue; }
            yield return (section, line.Split(' '));
        }
    }

    /// <summary>A hex code point ("00C0").</summary>
    public static int CodePoint(string hex) => int.Parse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    /// <summary>A hex range "0300..036F" as (first, last).</summary>
    public static (int First, int Last) CodePointRange(string range)
    {
        int dots = range.IndexOf("..", StringComparison.Ordinal);
        return (CodePoint(range[..dots]), CodePoint(range[(dots + 2)..]));
    }

    /// <summary>Fields [from..] read as hex code points and joined into a string.</summary>
    public static string Text(string[] fields, int from)
    {
        var text = new System.Text.StringBuilder();
        for (int i = from; i < fields.Length; i++) text.Append(char.ConvertFromUtf32(CodePoint(fields[i])));
        return text.ToString();
    }
}
