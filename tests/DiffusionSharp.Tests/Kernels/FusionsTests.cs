using DiffusionSharp.Kernels;

namespace DiffusionSharp.Tests.Kernels;

/// <summary>Parsing of the fusion switch list (DIFFUSIONSHARP_UNFUSED and bench's --unfused).</summary>
public class FusionsTests
{
    [Theory]
    [InlineData("", Fusion.None)]
    [InlineData(" , ", Fusion.None)]
    [InlineData("groupnorm-silu", Fusion.GroupNormSilu)]
    [InlineData("epilogue,temb", Fusion.Epilogue | Fusion.TimestepEmbedding)]
    [InlineData(" GEGLU , flash-attention ,softmax", Fusion.Geglu | Fusion.FlashAttention | Fusion.Softmax)]
    [InlineData("all", Fusion.All)]
    [InlineData("temb,all", Fusion.All)]
    public void Parse_reads_names_and_all(string list, Fusion expected)
        => Assert.Equal(expected, Fusions.Parse(list, "test"));

    [Theory]
    [InlineData("flash")]
    [InlineData("epilogue,gelu")]
    [InlineData("none")]
    public void Parse_rejects_unknown_names_naming_the_source_and_the_choices(string list)
    {
        var e = Assert.Throws<ArgumentException>(() => Fusions.Parse(list, Fusions.EnvironmentVariable));
        Assert.Contains(Fusions.EnvironmentVariable, e.Message);
        Assert.Contains("groupnorm-silu, epilogue, geglu, temb, flash-attention, softmax", e.Message);
    }

    [Fact]
    public void Every_single_fusion_has_a_name_that_parses_back()
    {
        Assert.Equal(6, Fusions.Each.Count);
        var all = Fusion.None;
        foreach (var fusion in Fusions.Each)
        {
            Assert.Equal(fusion, Fusions.Parse(Fusions.Name(fusion), "test"));
            all |= fusion;
        }
        Assert.Equal(Fusion.All, all);
        Assert.Throws<ArgumentException>(() => Fusions.Name(Fusion.All));
    }
}
