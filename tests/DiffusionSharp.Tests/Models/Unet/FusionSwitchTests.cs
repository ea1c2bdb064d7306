using DiffusionSharp.Kernels;
using DiffusionSharp.Tests.Models.Vae;

namespace DiffusionSharp.Tests.Models.Unet;

/// <summary><see cref="Fusions.Enabled"/> is process-wide: tests that switch it run in this collection, alone,
/// after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FusionSwitchCollection
{
    public const string Name = "FusionSwitches";
}

/// <summary>
/// The models with each fusion of "Speed Is All You Need" switched off in turn, and with all of them off: every
/// unfused twin must still reproduce the float64 PyTorch reference (tools/reference/sdref) within the same tolerance
/// as the fused path, and match the fused output. The tiny UNets have both kinds of ResnetBlock2D conv1 (3x3 and
/// MobileDiffusion's separable), GEGLU and SwiGLU feed-forwards, softmax and ReLU attention.
/// </summary>
[Collection(FusionSwitchCollection.Name)]
public class FusionSwitchTests
{
    public static TheoryData<string, string> Cases
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (string model in new[] { TinyModelFixtures.Sd15, TinyModelFixtures.Mobile })
            {
                foreach (var fusion in Fusions.Each) data.Add(model, Fusions.Name(fusion));
                data.Add(model, "all");
            }
            return data;
        }
    }

    private static T With<T>(Fusion enabled, Func<T> body)
    {
        var previous = Fusions.Enabled;
        Fusions.Enabled = enabled;
        try
        {
            return body();
        }
        finally
        {
            Fusions.Enabled = previous;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Unet_with_fusions_off_matches_reference_and_the_fused_output(string model, string unfused)
    {
        var enabled = Fusion.All & ~Fusions.Parse(unfused, "test");
        using var fixture = ComponentFixture.Open(model, "unet");
        using var unet = Unet2DConditionModelTests.Load(model);
        using var sample = fixture.Load("unet.sample");
        using var context = fixture.Load("unet.encoder_hidden_states");
        float[] guidance = unet.Config.TimeCondProjDim is null ? [] : fixture.Values("unet.guidance_w")[..sample.Shape[0]];
        float[] timesteps = fixture.Values("unet.timestep");
        var fused = With(Fusion.All, () => { using var o = unet.Forward(sample, timesteps, context, guidance); return o.ToArray(); });
        using var output = With(enabled, () => unet.Forward(sample, timesteps, context, guidance));
        fixture.AssertClose("unet.output", output, Unet2DConditionModelTests.Atol, Unet2DConditionModelTests.Rtol);
        Support.Tolerance.AssertClose(fused, output.ToArray(), 2e-6, 1e-5, $"{model} UNet, {unfused} unfused vs all fused");
    }

    [Theory]
    [InlineData(TinyModelFixtures.Sd15)]
    [InlineData(TinyModelFixtures.Mobile)]
    public void Vae_decode_with_all_fusions_off_matches_reference(string model)
        => With(Fusion.None, () => { new AutoencoderKLTests().Decode_matches_reference(model); return 0; });

    [Fact]
    public unsafe void Attention_dispatch_follows_the_switch()
    {
        // SD 1.5's 64x64 self-attention with CFG: the score-matrix twin refuses it before reading an operand, so the
        // refusal shows which path the public entry point took; the flash kernel is never reached.
        using var one = new Support.GuardedBuffer(320);
        var ops = new DiffusionSharp.Kernels.Attention.AttentionOperands(one.Pointer, 320, one.Pointer, 320, one.Pointer, 320, one.Pointer, 320);
        void Run() => DiffusionSharp.Kernels.Attention.AttentionKernel.Forward(ops, 2, 8, 4096, 4096, 40, 0.16f,
            DiffusionSharp.Kernels.Attention.AttentionActivation.Softmax, causal: false);
        With(Fusion.All & ~Fusion.Softmax, () => Assert.Throws<InvalidOperationException>(Run));
        With(Fusion.All & ~Fusion.FlashAttention & ~Fusion.Softmax, () => Assert.Throws<InvalidOperationException>(Run));
    }
}
