using DiffusionSharp.Evaluation;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Models;
using DiffusionSharp.Quantization;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Quantization;

/// <summary>
/// quantize -> write -> load on the tiny checkpoints: which layers the file holds, that an NF4 UNet computes exactly what
/// its dequantized weights do in fp32, that a loaded W4A4 UNet runs its quantized layers, that a diffusers folder whose unet/ file is the quantized file loads
/// the same model, and that the LDM single file takes a quantized UNet through the option.
/// </summary>
public sealed class ModelQuantizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("quantize").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Quantize(string model, string method, int rank = 4, bool gptq = false, bool asymmetric = false)
    {
        string output = Path.Combine(_dir, $"{Path.GetFileNameWithoutExtension(model)}-{method}{(gptq ? "-gptq" : "")}{(asymmetric ? "-asym" : "")}.safetensors");
        var result = ModelQuantizer.Run(new ModelQuantizerOptions
        {
            ModelPath = model,
            Layer = new LayerQuantizerSettings
            {
                Method = method, Rank = rank, GroupSize = 32, AlphaSteps = 4, LowRankIterations = 2, Gptq = gptq, AsymmetricActivations = asymmetric,
            },
            CalibrationPrompts = [new SeededPrompt("a red apple", 1, File: "a.png"), new SeededPrompt("a cat on a blue background", 2, File: "b.png")],
            CalibrationSteps = 2,
            SamplesPerLayer = 64,
            OutputPath = output,
        }, null, CancellationToken.None);
        Assert.Equal(output, result.OutputPath);
        Assert.All(result.Layers, l => Assert.True(l.RelativeError is >= 0 and < 1, $"{l.Key}: error {l.RelativeError}"));
        return output;
    }

    [Fact]
    public void Svdquant_file_loads_and_runs_its_quantized_layers()
    {
        string folder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);
        string file = Quantize(folder, QuantizationMethods.SvdQuant);
        using (var q = QuantizedUnetFile.Open(file))
        {
            Assert.Equal("svdquant", q.Info.Method);
            Assert.Contains(q.Layers, l => l.Key.EndsWith("attn2.to_q", StringComparison.Ordinal) && l.Rank == 4 && l.Format == QuantizedLayerFormat.W4A4);
            Assert.Contains(q.Layers, l => l.IsConvolution && l.KernelSize == 3);
            Assert.DoesNotContain(q.Layers, l => l.Key is "conv_in" or "conv_out" || l.Key.StartsWith("time_embedding", StringComparison.Ordinal));
            Assert.DoesNotContain(q.Layers, l => l.Key.StartsWith("text_model", StringComparison.Ordinal) || l.Key.StartsWith("decoder", StringComparison.Ordinal));
            Assert.True(q.PlainWeights.Contains("conv_in.weight"));
        }
        using var fp32 = ModelLoader.Load(folder);
        using var quantized = ModelLoader.Load(folder, new ModelLoadOptions { QuantizedUnet = file });
        var a = RunUnet(fp32);
        var b = RunUnet(quantized);
        double diff = 0, norm = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff += (a[i] - b[i]) * (double)(a[i] - b[i]);
            norm += a[i] * (double)a[i];
        }
        // Random tiny weights amplify any perturbation (NF4 alone moves this output by ~0.6): only "quantized, finite,
        // not absurd" is asserted here; the quality of SVDQuant is measured on the trained model (docs/QUANTIZATION.md).
        Assert.All(b, v => Assert.True(float.IsFinite(v)));
        Assert.InRange(Math.Sqrt(diff / norm), 1e-6, 2);

        // The same file as the folder's own UNet weights ("instead of") gives the same model.
        string copy = Path.Combine(_dir, "copy");
        CopyFolder(folder, copy);
        File.Copy(file, Path.Combine(copy, "unet", "diffusion_pytorch_model.safetensors"), overwrite: true);
        using var instead = ModelLoader.Load(copy);
        Assert.Equal(b, RunUnet(instead));
    }

    [Fact]
    public void Gptq_and_asymmetric_activations_are_recorded_and_the_file_runs()
    {
        string folder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);
        string file = Quantize(folder, QuantizationMethods.SvdQuant, gptq: true, asymmetric: true);
        using (var q = QuantizedUnetFile.Open(file))
        {
            Assert.All(q.Layers, l => Assert.True(l.AsymmetricActivations, l.Key));
            var calibration = System.Text.Json.Nodes.JsonNode.Parse(q.Info.Calibration)!;
            Assert.True((bool)calibration["gptq"]!);
            Assert.Equal("asymmetric", (string)calibration["activations"]!);
        }
        using var fp32 = ModelLoader.Load(folder);
        using var quantized = ModelLoader.Load(folder, new ModelLoadOptions { QuantizedUnet = file });
        var a = RunUnet(fp32);
        var b = RunUnet(quantized);
        Assert.All(b, v => Assert.True(float.IsFinite(v)));
        Assert.NotEqual(a, b);
        Assert.Equal(b, RunUnet(quantized));
    }

    [Fact]
    public void Nf4_file_runs_exactly_the_dequantized_weights()
    {
        // Weight-only NF4 keeps fp32 activations, so the quantized UNet must equal the fp32 UNet whose weights are
        // replaced by the file's dequantized ones: an exact check of keys, binding, and the (ky, kx, ci) order.
        string folder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);
        string file = Quantize(folder, QuantizationMethods.Nf4);
        var weights = new InMemoryWeightSource();
        using (var original = TinyModelFixtures.OpenWeights(TinyModelFixtures.Mobile, "unet"))
        using (var q = QuantizedUnetFile.Open(file))
        {
            var layers = q.Layers.ToDictionary(l => l.Key + ".weight");
            foreach (string key in original.Keys)
            {
                var shape = original.GetShape(key);
                var values = new float[shape.Aggregate(1L, (x, y) => x * y)];
                if (layers.TryGetValue(key, out var entry))
                {
                    var layer = q.Read(entry);
                    int kk = layer.KernelSize, cin = layer.InChannels;
                    for (int o = 0; o < layer.OutChannels; o++)
                    for (int i = 0; i < layer.K; i++)
                    {
                        int tap = i / cin, ci = i % cin;
                        float w = DiffusionSharp.Kernels.Quant.Nf4Matrix.Levels[layer.Codes[o * layer.K + i]] * layer.Scales[o * layer.Groups + i / layer.GroupSize];
                        values[((o * cin + ci) * kk + tap / kk) * kk + tap % kk] = w;
                    }
                }
                else
                {
                    original.Read(key, values);
                }
                weights.Add(key, values, shape);
            }
        }
        var config = TinyModelFixtures.LoadUnetConfig(TinyModelFixtures.Mobile);
        using var dequantized = DiffusionSharp.Models.Unet.Unet2DConditionModel.Load(new DiffusionSharp.Nn.WeightScope(weights), config);
        using var quantized = ModelLoader.Load(folder, new ModelLoadOptions { QuantizedUnet = file });
        var expected = RunUnet(dequantized, config);
        var actual = RunUnet(quantized.Unet, config);
        Support.Tolerance.AssertClose(expected, actual, 1e-4, 1e-4, "NF4 UNet vs dequantized fp32 UNet");
    }

    [Fact]
    public void Single_file_checkpoint_takes_a_quantized_unet()
    {
        string single = Path.Combine(TinyModelFixtures.Root, "models", "tiny-sd15.safetensors");
        var config = new ModelLoadOptions { ConfigFolder = TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15) };
        string file = Path.Combine(_dir, "w8a8.safetensors");
        ModelQuantizer.Run(new ModelQuantizerOptions
        {
            ModelPath = single, Load = config, Layer = new LayerQuantizerSettings { Method = QuantizationMethods.W8A8 },
            CalibrationPrompts = [new SeededPrompt("a photo of a cat", 0, File: "0.png")], CalibrationSteps = 1, SamplesPerLayer = 16, OutputPath = file,
        }, null, CancellationToken.None);
        using var model = ModelLoader.Load(single, config with { QuantizedUnet = file });
        Assert.All(RunUnet(model), v => Assert.True(float.IsFinite(v)));
        using var other = QuantizedUnetFile.Open(file);
        Assert.All(other.Layers, l => Assert.Equal(QuantizedLayerFormat.W8A8, l.Format));

        // A file made for another model is refused with the loader's error naming both.
        string mobileFile = Quantize(TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile), QuantizationMethods.W4A4Naive);
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(single, config with { QuantizedUnet = mobileFile }));
        Assert.Contains(mobileFile, e.Message);
    }

    private static float[] RunUnet(StableDiffusionModel model) => RunUnet(model.Unet, model.Unet.Config);

    private static float[] RunUnet(DiffusionSharp.Models.Unet.Unet2DConditionModel unet, DiffusionSharp.Models.Configs.UnetConfig c)
    {
        int h = c.SampleSize, w = c.SampleSize;
        using var sample = new Tensor(1, h, w, c.InChannels);
        var s = sample.Span;
        for (int i = 0; i < s.Length; i++) s[i] = MathF.Sin(0.37f * i);
        using var context = new Tensor(1, 77, c.CrossAttentionDim);
        var cs = context.Span;
        for (int i = 0; i < cs.Length; i++) cs[i] = MathF.Cos(0.11f * i);
        float[] guidance = c.TimeCondProjDim is null ? [] : [2f];
        using var output = unet.Forward(sample, [500f], context, guidance);
        return output.ToArray();
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (string dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(f, f.Replace(from, to));
    }
}
