namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// One tensor's entry in a safetensors header, validated. <see cref="DataOffset"/> is relative to the start of
/// the data buffer (byte 8 + header length of the file), as <c>data_offsets</c> in the header are.
/// </summary>
/// <param name="Name">The checkpoint key, e.g. <c>model.diffusion_model.input_blocks.0.0.weight</c>.</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="DataOffset">Offset of the first byte in the data buffer.</param>
/// <param name="ByteLength">Size of the tensor's data in bytes (0 when a dimension is 0).</param>
/// <param name="ElementCount">Product of <paramref name="Shape"/> (1 for a scalar).</param>
public sealed record SafetensorInfo(
    string Name, SafetensorsDType DType, long[] Shape, long DataOffset, long ByteLength, long ElementCount)
{
    public override string ToString() => $"{Name}: {DType.ToHeaderString()} {FormatShape(Shape)}";

    internal static string FormatShape<T>(IEnumerable<T> shape) => "[" + string.Join(", ", shape) + "]";
}
