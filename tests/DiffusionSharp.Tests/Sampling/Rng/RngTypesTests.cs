using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Tests.Sampling.Rng;

public class RngTypesTests
{
    [Theory]
    [InlineData("cuda", RngType.Cuda)]
    [InlineData("GPU", RngType.Cuda)]
    [InlineData("NV", RngType.Cuda)]
    [InlineData(" cpu ", RngType.Cpu)]
    [InlineData("CPU", RngType.Cpu)]
    public void Parse_AcceptsSdCppNamesAndA1111Values(string name, RngType expected) => Assert.Equal(expected, RngTypes.Parse(name));

    [Fact]
    public void Parse_RejectsUnknownNames_AndExplainsStdDefault()
    {
        var e = Assert.Throws<ArgumentException>(() => RngTypes.Parse("std_default"));
        Assert.Contains("cuda", e.Message);
        Assert.Contains("std_default", e.Message);
    }

    [Fact]
    public void Create_BuildsTheMatchingGenerator()
    {
        Assert.Equal(RngType.Cuda, RngTypes.Default);
        Assert.IsType<PhiloxGenerator>(RngTypes.Create(RngType.Cuda, 1));
        Assert.IsType<TorchCpuGenerator>(RngTypes.Create(RngType.Cpu, 1));
        Assert.Equal("cuda", RngTypes.Name(RngType.Cuda));
        Assert.Equal("NV", RngTypes.WebUiLabel(RngType.Cuda));
        Assert.Equal("CPU", RngTypes.WebUiLabel(RngType.Cpu));
    }
}
