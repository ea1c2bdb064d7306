namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// A float32 tensor to write, converted on the fly to the dtype given to
/// <see cref="SafetensorsWriter.Write(string, IEnumerable{Float32SafetensorEntry}, SafetensorsDType, IReadOnlyDictionary{string, string}?)"/>.
/// </summary>
/// <param name="Name">The key in the header; any string but <c>__metadata__</c>, unique within the file.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="Values">Exactly the element count of <paramref name="Shape"/>, row-major.</param>
public sealed record Float32SafetensorEntry(string Name, long[] Shape, ReadOnlyMemory<float> Values);
