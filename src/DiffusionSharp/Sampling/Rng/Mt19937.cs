namespace DiffusionSharp.Sampling.Rng;

/// <summary>
/// The 32-bit Mersenne Twister as PyTorch's CPU generator runs it (<c>aten/src/ATen/core/MT19937RNGEngine.h</c>):
/// standard MT19937 output, seeded with the low 32 bits of the 64-bit seed only.
/// </summary>
internal sealed class Mt19937
{
    private const int N = 624, M = 397;
    private const uint MatrixA = 0x9908B0DF, UpperMask = 0x80000000, LowerMask = 0x7FFFFFFF;

    private readonly uint[] _state = new uint[N];
    private int _next = N;

    public Mt19937(ulong seed)
    {
        _state[0] = (uint)seed;
        for (int j = 1; j < N; j++)
            _state[j] = 1812433253u * (_state[j - 1] ^ (_state[j - 1] >> 30)) + (uint)j;
    }

    public uint NextUInt32()
    {
        if (_next == N) Twist();
        uint y = _state[_next++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C5680;
        y ^= (y << 15) & 0xEFC60000;
        y ^= y >> 18;
        return y;
    }

    /// <summary>PyTorch <c>random64()</c>: the first 32-bit draw is the high word.</summary>
    public ulong NextUInt64()
    {
        ulong high = NextUInt32();
        return (high << 32) | NextUInt32();
    }

    private void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (_state[i] & UpperMask) | (_state[(i + 1) % N] & LowerMask);
            _state[i] = _state[(i + M) % N] ^ (y >> 1) ^ ((y & 1) != 0 ? MatrixA : 0);
        }
        _next = 0;
    }
}
