using System.CommandLine.Parsing;
using System.Globalization;

namespace DiffusionSharp.Cli.Commands;

/// <summary>Custom option parsers shared by the commands.</summary>
public static class OptionParsing
{
    /// <summary>
    /// An integer in [<paramref name="min"/>, <paramref name="max"/>], or a parse error "<paramref name="rule"/>, not
    /// 'TEXT'." — so an out-of-range value is a usage error like any other (a validator reading the converted value
    /// would throw on it instead).
    /// </summary>
    public static int? Int(ArgumentResult result, int min, int max, string rule)
    {
        string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(' ', result.Tokens.Select(t => t.Value));
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max)
            return value;
        result.AddError($"{rule}, not '{text}'.");
        return null;
    }
}
