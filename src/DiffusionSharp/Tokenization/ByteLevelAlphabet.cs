namespace DiffusionSharp.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-character map (openai/CLIP <c>bytes_to_unicode</c>). BPE runs on strings, so each
/// UTF-8 byte of a word is written as one character: the printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ')
/// stand for themselves, the other 68 bytes (controls, space, 0x7F..0xA0, 0xAD) become U+0100, U+0101, ... in
/// byte order. The CLIP vocabulary starts with these 256 characters in that order, printable bytes first.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The 256 byte values in vocabulary order: <c>VocabularyOrder[i]</c> is the byte of token id i.</summary>
    public static readonly byte[] VocabularyOrder = BuildVocabularyOrder();

    /// <summary><c>CharacterOf[b]</c> is the character that stands for byte b.</summary>
    public static readonly char[] CharacterOf = BuildCharacters();

    private static readonly short[] s_byteOfCharacter = BuildInverse();

    /// <summary>The byte a character stands for, or -1 when it is not one of the 256 alphabet characters.</summary>
    public static int ByteOf(char c) => c < s_byteOfCharacter.Length ? s_byteOfCharacter[c] : -1;

    private static bool IsPrintable(int b) => (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);

    private static byte[] BuildVocabularyOrder()
    {
        var order = new List<byte>(256);
        for (int b = 0; b < 256; b++) if (IsPrintable(b)) order.Add((byte)b);
        for (int b = 0; b < 256; b++) if (!IsPrintable(b)) order.Add((byte)b);
        return order.ToArray();
    }

    private static char[] BuildCharacters()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = IsPrintable(b) ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildInverse()
    {
        var inverse = new short[256 + 68];
        Array.Fill(inverse, (short)-1);
        for (int b = 0; b < 256; b++) inverse[CharacterOf[b]] = (short)b;
        return inverse;
    }
}
