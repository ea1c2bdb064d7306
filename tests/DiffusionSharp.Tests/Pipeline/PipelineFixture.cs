using System.Globalization;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Tests.IO;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Pipeline;

/// <summary>
/// One model's whole-pipeline fixture (tests/fixtures/pipeline/&lt;model&gt;.safetensors, written in float64 by
/// tools/fixtures/make_pipeline_fixtures.py): the settings of the runs in its metadata, and per run
/// "&lt;sampler&gt;.&lt;spacing&gt;.&lt;steps&gt;.latent" [1, C, h, w] and, for most runs, ".image" [1, 3, H, W] in [-1, 1].
/// </summary>
internal sealed class PipelineFixture : IDisposable
{
    private readonly SafetensorsFile _file;

    public PipelineFixture(string model)
    {
        Model = model;
        _file = SafetensorsFile.Open(Path.Combine(TinyModelFixtures.Root, "pipeline", model + ".safetensors"));
    }

    public string Model { get; }

    public string Prompt => _file.Metadata["prompt"];

    public string NegativePrompt => _file.Metadata["negative_prompt"];

    public long Seed => long.Parse(_file.Metadata["seed"], CultureInfo.InvariantCulture);

    public double CfgScale => double.Parse(_file.Metadata["cfg_scale"], CultureInfo.InvariantCulture);

    public int Width => int.Parse(_file.Metadata["width"], CultureInfo.InvariantCulture);

    public int Height => int.Parse(_file.Metadata["height"], CultureInfo.InvariantCulture);

    public static string Case(string sampler, string scheduler, int steps) => $"{sampler}.{scheduler}.{steps}";

    public bool Contains(string name) => _file.Contains(name);

    public int ModelCalls(string run) => int.Parse(_file.Metadata[run + ".model_calls"], CultureInfo.InvariantCulture);

    public int[] Shape(string name) => Array.ConvertAll(_file.GetInfo(name).Shape, d => checked((int)d));

    public float[] Values(string name) => _file.ReadFloat32(name);

    /// <summary>Row <paramref name="row"/> of the stored [2, 77] input ids: 0 = negative prompt, 1 = prompt.</summary>
    public int[] InputIds(int row)
    {
        float[] ids = Values("input_ids");
        int length = Shape("input_ids")[1];
        return Array.ConvertAll(ids[(row * length)..((row + 1) * length)], v => checked((int)v));
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// The tiny models as the pipeline tests load them, once per test class: tiny-sd15's diffusers folder, and a copy of
/// tiny-mobile whose diffusionsharp.json sets <c>guidance_embedding_offset</c> 1 (the UNet receives CFG - 1, as the
/// shipped model's export states and the fixture computes).
/// </summary>
public sealed class TinyPipelineModels : IDisposable
{
    private readonly TempFolder _scratch = new();

    public TinyPipelineModels()
    {
        Sd15 = ModelLoader.Load(TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15));
        string mobile = _scratch.File(TinyModelFixtures.Mobile);
        CopyFolder(TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile), mobile);
        File.WriteAllText(Path.Combine(mobile, ModelDefaults.FileName), "{ \"guidance_embedding_offset\": 1.0 }");
        Mobile = ModelLoader.Load(mobile);
    }

    public StableDiffusionModel Sd15 { get; }

    public StableDiffusionModel Mobile { get; }

    public StableDiffusionModel this[string model] => model == TinyModelFixtures.Sd15 ? Sd15 : Mobile;

    internal static void CopyFolder(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (string file in Directory.GetFiles(source))
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)));
        foreach (string dir in Directory.GetDirectories(source))
            CopyFolder(dir, Path.Combine(destination, Path.GetFileName(dir)));
    }

    public void Dispose()
    {
        Sd15.Dispose();
        Mobile.Dispose();
        _scratch.Dispose();
    }
}
