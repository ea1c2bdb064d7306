namespace DiffusionSharp.Tokenization;

/// <summary>
/// A prompt framed for the CLIP text encoder: <c>[49406, tokens..., 49407, 49407...]</c>, exactly
/// <c>maxLength</c> ids, as SD 1.x's tokenizer produces with <c>padding="max_length", truncation=True</c>.
/// </summary>
/// <param name="InputIds">Start token, the first <see cref="MaxTokens"/> tokens at most, end token, then the end token
/// repeated as padding up to the requested length.</param>
/// <param name="TokenCount">Tokens of the prompt, start and end excluded, before truncation.</param>
/// <param name="Truncated">True when <see cref="TokenCount"/> exceeds <see cref="MaxTokens"/> and tokens were dropped.</param>
/// <param name="DroppedTokens">The vocabulary strings of the dropped tokens, in order (e.g. "cat&lt;/w&gt;").</param>
/// <param name="DroppedText">The dropped tokens decoded back to text, trimmed (empty when nothing was dropped).</param>
public sealed record TokenizedPrompt(int[] InputIds, int TokenCount, bool Truncated, IReadOnlyList<string> DroppedTokens, string DroppedText)
{
    /// <summary>How many prompt tokens fit between the start and end tokens: 75 for SD's 77.</summary>
    public int MaxTokens => InputIds.Length - 2;
}
