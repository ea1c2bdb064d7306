using DiffusionSharp.IO.Safetensors;

namespace DiffusionSharp.Tests.Quantization;

/// <summary>tests/fixtures/quant/quant_reference.safetensors (tools/fixtures/make_quant_fixtures.py): numpy numbers.</summary>
internal sealed class QuantFixture : IDisposable
{
    private readonly SafetensorsFile _file = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", "quant", "quant_reference.safetensors"));

    public float[] Floats(string name) => _file.ReadFloat32(name);

    public double[] Doubles(string name)
    {
        var info = _file.GetInfo(name);
        if (info.DType == SafetensorsDType.F64)
            return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(_file.GetBytes(info)).ToArray();
        return Array.ConvertAll(_file.ReadFloat32(info), v => (double)v);
    }

    public long[] Shape(string name) => _file.GetInfo(name).Shape;

    public void Dispose() => _file.Dispose();
}
