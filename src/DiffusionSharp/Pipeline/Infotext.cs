using System.Globalization;
using System.Text;

namespace DiffusionSharp.Pipeline;

/// <summary>
/// The AUTOMATIC1111 "parameters" text stored in each PNG, which the web UIs' PNG Info tab reads back:
/// the prompt, a "Negative prompt: ..." line when there is one, then "Key: value" pairs separated by ", ".
/// Values that contain ',', ':' or '"' are quoted as the web UI does.
/// </summary>
public static class Infotext
{
    public const string ChunkKeyword = "parameters";

    public static string Format(string prompt, string negativePrompt, IEnumerable<KeyValuePair<string, string>> fields)
    {
        var sb = new StringBuilder();
        sb.Append(prompt);
        if (negativePrompt.Length > 0) sb.Append("\nNegative prompt: ").Append(negativePrompt);
        sb.Append('\n');
        bool first = true;
        foreach (var (key, value) in fields)
        {
            if (!first) sb.Append(", ");
            first = false;
            sb.Append(key).Append(": ").Append(Quote(value));
        }
        return sb.ToString();
    }

    /// <summary>The web UI's quoting: JSON-style double quotes around values holding ',', ':' or '"'.</summary>
    public static string Quote(string value)
    {
        if (value.IndexOfAny([',', ':', '"', '\n']) < 0) return value;
        var sb = new StringBuilder("\"");
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>A number as the web UI prints it: invariant culture, no trailing ".0" for whole values.</summary>
    public static string Number(double value) => value.ToString("0.######", CultureInfo.InvariantCulture);
}
