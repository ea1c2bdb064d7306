using System.Security.Cryptography;
using DiffusionSharp.Cli;
using DiffusionSharp.Cli.Commands;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Tests.IO;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Tests.Cli;

/// <summary>
/// <c>diffusion generate</c> sets the process-wide thread count (<see cref="ThreadScheduler.SetDefaultThreadCount"/>,
/// which replaces the default scheduler): its tests run alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliGenerateCollection
{
    public const string Name = "CliGenerate";
}

/// <summary><c>diffusion generate</c> on the tiny models: files, names, determinism, metadata, and every refusal.</summary>
[Collection(CliGenerateCollection.Name)]
public sealed class GenerateCommandTests : IDisposable
{
    private const string Prompt = "a photo of a cat";
    private const string Negative = "blurry, low quality";

    private readonly TempFolder _scratch = new();

    public void Dispose()
    {
        ThreadScheduler.SetDefaultThreadCount(0);
        _scratch.Dispose();
    }

    /// <summary>A generate command line; 2 steps unless <paramref name="more"/> says otherwise (options may not repeat).</summary>
    private static string[] Args(string model, string output, params string[] more)
    {
        string[] steps = more.Contains("--steps") ? [] : ["--steps", "2"];
        return ["generate", "-m", model, "-p", Prompt, "-n", Negative, "-o", output, .. steps, .. more];
    }

    [Fact]
    public void Same_arguments_give_byte_identical_pngs_with_one_or_two_threads_and_on_repeat()
    {
        byte[] Run(string name, string threads)
        {
            string path = _scratch.File(name);
            var r = CliRunner.Run(Args(TestCheckpoints.Sd15Folder, path, "--steps", "3", "--sampler", "euler_a", "--rng", "cpu", "-t", threads));
            Assert.Equal(ExitCodes.Success, r.ExitCode);
            Assert.Equal([path], r.OutputLines);
            return File.ReadAllBytes(path);
        }
        byte[] one = Run("t1.png", "1");
        byte[] two = Run("t2.png", "2");
        byte[] again = Run("t2-again.png", "2");
        Assert.Equal(one, two);
        Assert.Equal(two, again);
        var png = PngReader.Read(_scratch.File("t1.png"));
        Assert.Equal((64, 64), (png.Width, png.Height));
        Assert.Contains(png.Pixels, b => b != png.Pixels[0]);
    }

    [Fact]
    public void Precision_fp16_gives_the_fp32_png_of_an_fp16_checkpoint_and_bf16_a_close_one()
    {
        byte[] Run(string name, params string[] precision)
        {
            string path = _scratch.File(name);
            var r = CliRunner.Run(Args(TestCheckpoints.Sd15Folder, path, [.. precision, "--rng", "cpu"]));
            Assert.Equal(ExitCodes.Success, r.ExitCode);
            return File.ReadAllBytes(path);
        }
        byte[] fp32 = Run("fp32.png");
        byte[] fp16 = Run("fp16.png", "--precision", "fp16");
        byte[] bf16 = Run("bf16.png", "--precision", "BF16");
        Assert.Equal(fp32, fp16);   // the tiny checkpoint is stored in fp16: 16-bit storage loses nothing
        Assert.NotEqual(fp32, bf16);
        var exact = PngReader.Read(_scratch.File("fp32.png")).Pixels;
        var rounded = PngReader.Read(_scratch.File("bf16.png")).Pixels;
        double meanDifference = exact.Zip(rounded, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(meanDifference < 8, $"bf16 image differs from fp32 by {meanDifference:0.00} levels on average");
    }

    [Fact]
    public void A_batch_of_three_is_seeds_42_43_44_named_out_out_2_out_3_each_equal_to_its_single_run()
    {
        string batchFolder = Path.Combine(_scratch.Path, "batch");
        Directory.CreateDirectory(batchFolder);
        string output = Path.Combine(batchFolder, "out.png");
        var r = CliRunner.Run(Args(TestCheckpoints.MobileFolder, output, "-b", "3"));
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        string[] names = [output, Path.Combine(batchFolder, "out_2.png"), Path.Combine(batchFolder, "out_3.png")];
        Assert.Equal(names, r.OutputLines);
        Assert.Equal(names.Order(StringComparer.Ordinal), Directory.GetFiles(batchFolder).Order(StringComparer.Ordinal));

        for (int k = 0; k < 3; k++)
        {
            string seed = (42 + k).ToString(System.Globalization.CultureInfo.InvariantCulture);
            string single = _scratch.File($"seed{seed}.png");
            Assert.Equal(ExitCodes.Success, CliRunner.Run(Args(TestCheckpoints.MobileFolder, single, "-s", seed)).ExitCode);
            Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(names[k]));
            Assert.Contains($", Seed: {seed}, ", PngReader.Read(names[k]).Text[Infotext.ChunkKeyword]);
        }
        Assert.NotEqual(PngReader.Read(names[0]).Pixels, PngReader.Read(names[1]).Pixels);
    }

    [Fact]
    public void Png_parameters_of_a_single_file_model_with_cpu_rng()
    {
        string path = _scratch.File("single.png");
        var r = CliRunner.Run(Args(TestCheckpoints.Sd15SingleFile, path, "--model-config", TestCheckpoints.Sd15Folder,
            "-W", "64", "-H", "48", "--sampling-method", "dpm++2m", "--scheduler", "karras", "--cfg-scale", "5.5", "-s", "123", "--rng", "cpu"));
        Assert.Equal(ExitCodes.Success, r.ExitCode);

        using var stream = File.OpenRead(TestCheckpoints.Sd15SingleFile);
        string hash = Convert.ToHexStringLower(SHA256.HashData(stream))[..10];
        var png = PngReader.Read(path);
        Assert.Equal((64, 48), (png.Width, png.Height));
        string[] lines = png.Text[Infotext.ChunkKeyword].Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Equal(Prompt, lines[0]);
        Assert.Equal("Negative prompt: " + Negative, lines[1]);
        Assert.Equal(
        [
            "Steps: 2", "Sampler: DPM++ 2M", "Schedule type: Karras", "CFG scale: 5.5", "Seed: 123", "Size: 64x48",
            $"Model hash: {hash}", "Model: tiny-sd15", "RNG: CPU", "Version: DiffusionSharp " + TextToImagePipeline.Version,
        ], lines[2].Split(", "));
    }

    [Fact]
    public void Png_parameters_of_a_folder_model_with_the_default_rng_eta_and_clip_skip()
    {
        string path = _scratch.File("folder.png");
        var r = CliRunner.Run(["generate", "-m", TestCheckpoints.MobileFolder, "-p", "an emoji: a \"red\" apple", "--steps", "1",
            "--sampler", "Euler a", "--eta", "0.5", "--clip-skip", "2", "-o", path]);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        string[] lines = PngReader.Read(path).Text[Infotext.ChunkKeyword].Split('\n');
        Assert.Equal(2, lines.Length);                         // no negative prompt line
        Assert.Equal("an emoji: a \"red\" apple", lines[0]);   // the prompt line is never quoted
        Assert.Equal(
        [
            "Steps: 1", "Sampler: Euler a", "Schedule type: Uniform", "CFG scale: 7", "Seed: 42", "Size: 16x16",
            "Model: tiny-mobile", "Eta: 0.5", "Clip skip: 2", "Version: DiffusionSharp " + TextToImagePipeline.Version,
        ], lines[1].Split(", "));
    }

    /// <summary>Each invalid input: its exit code, a fragment its one error line must hold, and its arguments.</summary>
    public static TheoryData<string, int, string> Refusals() => new()
    {
        { "zero steps", ExitCodes.Usage, "Steps must be between 1 and 1000, got 0" },
        { "negative steps", ExitCodes.Usage, "Steps must be between 1 and 1000, got -3" },
        { "width not a multiple of 8", ExitCodes.Usage, "Width 60 must be a multiple of 8" },
        { "unknown sampler", ExitCodes.Usage, "Unknown sampler 'euler_b'" },
        { "unknown scheduler", ExitCodes.Usage, "Unknown scheduler 'cosine'" },
        { "bad rng", ExitCodes.Usage, "--rng must be cuda or cpu, not 'philox'" },
        { "bad precision", ExitCodes.Usage, "--precision must be fp32, fp16 or bf16, not 'fp8'" },
        { "ddim at one step", ExitCodes.Usage, "needs at least 2 steps" },
        { "no prompt", ExitCodes.Usage, "--prompt" },
        { "unknown option", ExitCodes.Usage, "--frobnicate" },
        { "missing model file", ExitCodes.BadInput, "is neither a file nor a folder" },
        { "folder that is not a model", ExitCodes.BadInput, "is not a diffusers model folder: 'unet/' is missing" },
        { "pickle checkpoint", ExitCodes.BadInput, "is a PyTorch pickle checkpoint" },
        { "truncated safetensors", ExitCodes.BadInput, "truncated.safetensors" },
        { "SD 2.x single file", ExitCodes.BadInput, "Stable Diffusion 2.x checkpoint" },
        { "not a diffusion model", ExitCodes.BadInput, "is not a Stable Diffusion 1.x checkpoint" },
        { "non-standard single file without configs", ExitCodes.BadInput, "--model-config" },
        { "output folder missing", ExitCodes.BadInput, "does not exist" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Invalid_input_gives_its_exit_code_one_error_line_and_no_file(string refusal, int exitCode, string fragment)
    {
        string outFolder = Path.Combine(_scratch.Path, "out");
        Directory.CreateDirectory(outFolder);
        string output = Path.Combine(outFolder, "image.png");
        string[] args = refusal switch
        {
            "zero steps" => Args(TestCheckpoints.MobileFolder, output, "--steps", "0"),
            "negative steps" => Args(TestCheckpoints.MobileFolder, output, "--steps", "-3"),
            "width not a multiple of 8" => Args(TestCheckpoints.Sd15Folder, output, "-W", "60"),
            "unknown sampler" => Args(TestCheckpoints.MobileFolder, output, "--sampler", "euler_b"),
            "unknown scheduler" => Args(TestCheckpoints.MobileFolder, output, "--scheduler", "cosine"),
            "bad rng" => Args(TestCheckpoints.MobileFolder, output, "--rng", "philox"),
            "bad precision" => Args(TestCheckpoints.MobileFolder, output, "--precision", "fp8"),
            "ddim at one step" => Args(TestCheckpoints.MobileFolder, output, "--sampler", "ddim", "--steps", "1"),
            "no prompt" => ["generate", "-m", TestCheckpoints.MobileFolder, "-o", output],
            "unknown option" => Args(TestCheckpoints.MobileFolder, output, "--frobnicate"),
            "missing model file" => Args(_scratch.File("no-such-model.safetensors"), output),
            "folder that is not a model" => Args(Directory.CreateDirectory(_scratch.File("empty")).FullName, output),
            "pickle checkpoint" => Args(TestCheckpoints.Pickle(_scratch, "model.ckpt"), output),
            "truncated safetensors" => Args(TestCheckpoints.Truncated(_scratch), output),
            "SD 2.x single file" => Args(TestCheckpoints.Sd2Shaped(_scratch), output),
            "not a diffusion model" => Args(TestCheckpoints.NotStableDiffusion(_scratch), output),
            "non-standard single file without configs" => Args(TestCheckpoints.Sd15SingleFile, output),
            "output folder missing" => Args(TestCheckpoints.MobileFolder, Path.Combine(_scratch.Path, "no-such-folder", "image.png")),
            _ => throw new ArgumentOutOfRangeException(nameof(refusal), refusal, "no arguments for this case"),
        };
        var r = CliRunner.Run(args);
        Assert.Equal(exitCode, r.ExitCode);
        Assert.Contains(fragment, r.SingleErrorLine());
        Assert.Empty(r.Output);
        Assert.Empty(Directory.GetFileSystemEntries(outFolder));
        if (exitCode == ExitCodes.Usage && !r.Error.Contains("loading ", StringComparison.Ordinal))
            Assert.Single(r.ErrorLines);   // a parse error is the whole of stderr
    }

    [Fact]
    public void The_sd2_refusal_says_not_supported()
    {
        var r = CliRunner.Run(Args(TestCheckpoints.Sd2Shaped(_scratch), _scratch.File("x.png")));
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Matches("Stable Diffusion 2.x .*not supported", r.SingleErrorLine());
    }

    [Fact]
    public void Cancellation_maps_to_exit_code_130_and_one_line()
    {
        using var error = new StringWriter();
        Assert.Equal(ExitCodes.Cancelled, CommandErrors.Report(new OperationCanceledException(), error, verbose: true));
        Assert.Equal("error: cancelled" + Environment.NewLine, error.ToString());
    }
}
