using System.Text;
using DiffusionSharp.IO.Safetensors;
using DiffusionSharp.Tests.IO;
using DiffusionSharp.Tests.Models;

namespace DiffusionSharp.Tests.Cli;

/// <summary>
/// Model files and folders that are wrong in one way each, made in a scratch folder from the tiny fixtures
/// (tests/fixtures/models/): for the loader's and the CLI's error paths.
/// </summary>
internal static class TestCheckpoints
{
    /// <summary>tiny-sd15 as one original-layout (LDM) safetensors file; its configs are in <see cref="Sd15Folder"/>.</summary>
    public static string Sd15SingleFile => Path.Combine(TinyModelFixtures.Root, "models", TinyModelFixtures.Sd15 + ".safetensors");

    public static string Sd15Folder => TinyModelFixtures.ModelFolder(TinyModelFixtures.Sd15);

    public static string MobileFolder => TinyModelFixtures.ModelFolder(TinyModelFixtures.Mobile);

    /// <summary>
    /// Copies the safetensors file <paramref name="source"/> to <paramref name="destination"/>: each tensor through
    /// <paramref name="edit"/> (which returns it unchanged, a replacement, or null to drop it), then <paramref name="extra"/>.
    /// </summary>
    public static void Rewrite(string source, string destination, Func<SafetensorEntry, SafetensorEntry?> edit, params SafetensorEntry[] extra)
    {
        using var file = SafetensorsFile.Open(source);
        var entries = new List<SafetensorEntry>();
        foreach (var info in file.Tensors)
            if (edit(new SafetensorEntry(info.Name, info.DType, info.Shape, file.GetBytes(info).ToArray())) is { } kept)
                entries.Add(kept);
        entries.AddRange(extra);
        SafetensorsWriter.Write(destination, entries, file.Metadata);
    }

    /// <summary>A float16 tensor of zeros.</summary>
    public static SafetensorEntry ZerosF16(string name, params long[] shape)
        => new(name, SafetensorsDType.F16, shape, new byte[2 * shape.Aggregate(1L, (a, b) => a * b)]);

    /// <summary>
    /// The tiny single file with every cross-attention key/value projection widened to a 1024-wide context, the shape
    /// of Stable Diffusion 2.x's OpenCLIP ViT-H conditioning.
    /// </summary>
    public static string Sd2Shaped(TempFolder folder)
    {
        string path = folder.File("tiny-sd2-shaped.safetensors");
        Rewrite(Sd15SingleFile, path, e =>
            e.Name.Contains(".attn2.to_k.", StringComparison.Ordinal) || e.Name.Contains(".attn2.to_v.", StringComparison.Ordinal)
                ? ZerosF16(e.Name, e.Shape[0], 1024)
                : e);
        return path;
    }

    /// <summary>A valid safetensors file holding a small BERT-like encoder: nothing of a diffusion model.</summary>
    public static string NotStableDiffusion(TempFolder folder)
    {
        string path = folder.File("bert-like.safetensors");
        SafetensorsWriter.Write(path,
        [
            ZerosF16("embeddings.word_embeddings.weight", 100, 8),
            ZerosF16("encoder.layer.0.attention.self.query.weight", 8, 8),
            ZerosF16("encoder.layer.0.output.dense.weight", 8, 8),
        ]);
        return path;
    }

    /// <summary>The first half of the tiny single file: a header promising more data than there is.</summary>
    public static string Truncated(TempFolder folder)
    {
        byte[] bytes = File.ReadAllBytes(Sd15SingleFile);
        return folder.Write("truncated.safetensors", bytes[..(bytes.Length / 2)]);
    }

    /// <summary>The start of a PyTorch zip checkpoint (torch.save's format since 1.6) under <paramref name="name"/>.</summary>
    public static string Pickle(TempFolder folder, string name)
    {
        byte[] zipStart = [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, .. Encoding.ASCII.GetBytes("archive/data.pkl")];
        return folder.Write(name, zipStart);
    }

    /// <summary>A copy of the tiny SD 1.5 diffusers folder in <paramref name="folder"/>, to break on purpose.</summary>
    public static string CopyOfSd15Folder(TempFolder folder)
    {
        string copy = folder.File(TinyModelFixtures.Sd15);
        Pipeline.TinyPipelineModels.CopyFolder(Sd15Folder, copy);
        return copy;
    }
}
