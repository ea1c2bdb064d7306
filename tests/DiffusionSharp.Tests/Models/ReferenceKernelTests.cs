using DiffusionSharp.Kernels;
using DiffusionSharp.Tests.Models.Clip;
using DiffusionSharp.Tests.Models.Unet;

namespace DiffusionSharp.Tests.Models;

/// <summary><see cref="KernelSettings.UseReference"/> is process-wide: tests that switch it run in this collection,
/// alone, after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ReferenceKernelsCollection
{
    public const string Name = "ReferenceKernels";
}

/// <summary>The model fixtures again, with every kernel on its scalar double-accumulating reference twin: the path
/// DIFFUSIONSHARP_REFERENCE_KERNELS=1 selects for bisecting a wrong image.</summary>
[Collection(ReferenceKernelsCollection.Name)]
public class ReferenceKernelTests
{
    private static void WithReferenceKernels(Action test)
    {
        bool previous = KernelSettings.UseReference;
        KernelSettings.UseReference = true;
        try
        {
            test();
        }
        finally
        {
            KernelSettings.UseReference = previous;
        }
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Text_encoder_matches_reference_on_reference_kernels(string model)
        => WithReferenceKernels(() => new ClipTextModelTests().Last_hidden_state_matches_reference(model));

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Unet_matches_reference_on_reference_kernels(string model)
        => WithReferenceKernels(() => new Unet2DConditionModelTests().Matches_reference(model, "unet"));
}
