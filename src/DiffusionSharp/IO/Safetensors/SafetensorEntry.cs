namespace DiffusionSharp.IO.Safetensors;

/// <summary>A tensor to write: its raw little-endian bytes in <paramref name="DType"/>, row-major.</summary>
/// <param name="Name">The key in the header; any string but <c>__metadata__</c>, unique within the file.</param>
/// <param name="DType">Element type of <paramref name="Data"/>.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="Data">Exactly element count x bit size / 8 bytes.</param>
public sealed record SafetensorEntry(string Name, SafetensorsDType DType, long[] Shape, ReadOnlyMemory<byte> Data);
