using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Models.Configs;
using DiffusionSharp.Nn;
using DiffusionSharp.Tensors;
using DiffusionSharp.Tests.Support;

namespace DiffusionSharp.Tests.Models;

/// <summary>
/// The tiny checkpoints (tests/fixtures/models/, diffusers folders written by tools/fixtures/make_tiny_models.py) and
/// the component fixtures computed from them in float64 by tools/fixtures/make_component_fixtures.py
/// (tests/fixtures/components/: inputs and expected outputs, NCHW, each case naming the checkpoint prefix of its module).
/// </summary>
internal static class TinyModelFixtures
{
    public const string Sd15 = "tiny-sd15";
    public const string Mobile = "tiny-mobile";

    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string ModelFolder(string model) => Path.Combine(Root, "models", model);

    public static UnetConfig LoadUnetConfig(string model) => UnetConfig.FromJson(ReadConfig(model, "unet"), ConfigPath(model, "unet"));

    public static ClipTextConfig LoadClipConfig(string model) => ClipTextConfig.FromJson(ReadConfig(model, "text_encoder"), ConfigPath(model, "text_encoder"));

    public static VaeConfig LoadVaeConfig(string model) => VaeConfig.FromJson(ReadConfig(model, "vae"), ConfigPath(model, "vae"));

    public static string ConfigPath(string model, string component) => Path.Combine(ModelFolder(model), component, "config.json");

    private static string ReadConfig(string model, string component) => File.ReadAllText(ConfigPath(model, component));

    /// <summary>The weights file of a component of a diffusers folder.</summary>
    public static string WeightsPath(string model, string component)
        => Path.Combine(ModelFolder(model), component, component == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors");

    public static SafetensorsWeightSource OpenWeights(string model, string component) => SafetensorsWeightSource.Open(WeightsPath(model, component));
}

/// <summary>One component fixture file, with its model's weights at hand for the cases that need them.</summary>
internal sealed class ComponentFixture : IDisposable
{
    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, SafetensorsWeightSource> _weights = [];

    public string Model { get; }

    private ComponentFixture(string model, string part)
    {
        Model = model;
        _file = SafetensorsFile.Open(Path.Combine(TinyModelFixtures.Root, "components", $"{model}.{part}.safetensors"));
    }

    /// <summary><paramref name="part"/>: text_encoder, unet, vae or modules.</summary>
    public static ComponentFixture Open(string model, string part) => new(model, part);

    /// <summary>The scope of the module a case exercises, from its "&lt;case&gt;.module" metadata ("unet/down_blocks.1.resnets.0").</summary>
    public WeightScope ModuleScope(string caseName)
    {
        string module = _file.Metadata[$"{caseName}.module"];
        int slash = module.IndexOf('/');
        string component = module[..slash], prefix = module[(slash + 1)..];
        if (!_weights.TryGetValue(component, out var source))
            _weights[component] = source = TinyModelFixtures.OpenWeights(Model, component);
        var scope = new WeightScope(source);
        foreach (var segment in prefix.Split('.', StringSplitOptions.RemoveEmptyEntries))
            scope = int.TryParse(segment, out int index) ? scope.Push(index) : scope.Push(segment);
        return scope;
    }

    public int[] Shape(string name) => Array.ConvertAll(_file.GetInfo(name).Shape, d => checked((int)d));

    public float[] Values(string name) => _file.ReadFloat32(name);

    public int[] Ints(string name) => Array.ConvertAll(Values(name), v => checked((int)v));

    /// <summary>A stored tensor as the engine lays it out: rank-4 NCHW becomes NHWC, other ranks are unchanged.</summary>
    public Tensor Load(string name)
    {
        int[] shape = Shape(name);
        float[] values = Values(name);
        return shape.Length == 4 ? Layout.NchwToNhwc(values, shape) : Tensor.FromArray(values, shape);
    }

    /// <summary>Compares <paramref name="actual"/> (engine layout) with the stored reference <paramref name="name"/>.</summary>
    public void AssertClose(string name, Tensor actual, double atol, double rtol)
    {
        using var expected = Load(name);
        Assert.Equal(expected.Shape, actual.Shape);
        Tolerance.AssertClose(expected.Span, actual.Span, atol, rtol, $"{Model} {name}");
    }

    public void Dispose()
    {
        foreach (var source in _weights.Values) source.Dispose();
        _file.Dispose();
    }
}

/// <summary>Converts between PyTorch's NCHW and the engine's channels-last NHWC.</summary>
internal static class Layout
{
    public static Tensor NchwToNhwc(ReadOnlySpan<float> values, int[] nchw)
    {
        int n = nchw[0], c = nchw[1], h = nchw[2], w = nchw[3];
        var t = new Tensor(n, h, w, c);
        var dst = t.Span;
        for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            dst[((b * h + y) * w + x) * c + ch] = values[((b * c + ch) * h + y) * w + x];
        return t;
    }
}
