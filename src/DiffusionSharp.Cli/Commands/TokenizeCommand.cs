using System.CommandLine;
using DiffusionSharp.Tokenization;

namespace DiffusionSharp.Cli.Commands;

/// <summary><c>diffusion tokenize</c>: the CLIP token ids of a prompt, start and end tokens included, no padding.</summary>
public static class TokenizeCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to tokenize.", Required = true };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print each token's string and the count against the 75-token limit." };
        var command = new Command("tokenize", "Print the CLIP BPE token ids of a prompt on one line (start 49406 and end 49407 included, no padding).")
        {
            prompt, verbose,
        };
        command.SetAction(parse =>
        {
            try
            {
                var tokenizer = ClipTokenizer.Default;
                string text = parse.GetValue(prompt)!;
                int[] body = tokenizer.Encode(text);
                var ids = new int[body.Length + 2];
                ids[0] = ClipTokenizer.StartToken;
                body.CopyTo(ids, 1);
                ids[^1] = ClipTokenizer.EndToken;
                output.WriteLine(string.Join(' ', ids));
                if (parse.GetValue(verbose))
                {
                    foreach (int id in ids) output.WriteLine($"{id,6}  {tokenizer.TokenString(id)}");
                    int limit = ClipTokenizer.DefaultMaxLength - 2;
                    output.WriteLine(body.Length <= limit
                        ? $"{body.Length} of {limit} tokens"
                        : $"{body.Length} of {limit} tokens: {body.Length - limit} past the limit would be dropped");
                }
                return ExitCodes.Success;
            }
            catch (Exception e)
            {
                return CommandErrors.Report(e, error, parse.GetValue(verbose));
            }
        });
        return command;
    }
}
