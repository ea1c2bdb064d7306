namespace DiffusionSharp.Kernels.Quant;

/// <summary>
/// The quantized form of M activation rows for one <see cref="IntegerMatrix"/>, in the calling thread's scratch
/// (valid until that thread quantizes again): codes [M, PaddedK] (one signed byte each, zeros past K), scales
/// [M, Groups], corrections [M, Groups] (= weight offset x the group's code sum, which turns the product with the
/// unsigned stored weights back into the signed one) and the branch's inputs [M, BranchWidth]: x̂ · down, then the zero points of asymmetric activations.
/// </summary>
internal readonly unsafe struct QuantizedActivations
{
    public readonly sbyte* Codes;
    public readonly float* Scales;
    public readonly int* Corrections;
    public readonly float* LowRank;

    public QuantizedActivations(int m, IntegerMatrix w)
    {
        Codes = (sbyte*)Scratch.Bytes(ScratchSlot.QuantActivations, (long)m * w.PaddedK);
        Scales = Scratch.Floats(ScratchSlot.QuantScales, (long)m * w.Groups);
        Corrections = (int*)Scratch.Bytes(ScratchSlot.QuantCorrections, (long)m * w.Groups * sizeof(int));
        LowRank = w.BranchWidth > 0 ? Scratch.Floats(ScratchSlot.QuantLowRank, (long)m * w.BranchWidth) : null;
    }
}
