using System.Text;
using System.Text.Json;
using DiffusionSharp.Caching;
using DiffusionSharp.Cli;
using DiffusionSharp.Cli.Commands;
using DiffusionSharp.IO.Png;
using DiffusionSharp.Tests.Cli;
using DiffusionSharp.Tests.IO;
using DiffusionSharp.Threading;

namespace DiffusionSharp.Tests.Caching;

/// <summary>
/// <c>generate --cache</c> and <c>cache-profile</c> (with <c>compare</c>) on the tiny models: the files they write, the
/// parameters text, and every refusal with its exit code. They set the process-wide thread count, so they run with the
/// other generate tests, alone.
/// </summary>
[Collection(CliGenerateCollection.Name)]
public sealed class CacheCliTests : IDisposable
{
    private readonly TempFolder _scratch = new();

    public void Dispose()
    {
        ThreadScheduler.SetDefaultThreadCount(0);
        _scratch.Dispose();
    }

    private string Prompts()
        => _scratch.Write("prompts.txt", Encoding.UTF8.GetBytes("a red apple on a blue background\nrocket on a black background\n"));

    private static string[] Generate(string output, params string[] more)
        => ["generate", "-m", TestCheckpoints.MobileFolder, "-p", "a cat", "--steps", "3", "--sampling-method", "ddim_trailing", "--rng", "cpu", "-o", output, .. more];

    [Theory]
    [InlineData("interval:0", "--cache interval:N needs a whole number N >= 1, not '0'.")]
    [InlineData("interval:x", "--cache interval:N needs a whole number N >= 1, not 'x'.")]
    [InlineData("", "--cache needs a schedule file, 'auto' or 'interval:N'.")]
    public void A_bad_cache_value_is_a_usage_error(string value, string message)
    {
        var r = CliRunner.Run(Generate(_scratch.File("x.png"), "--cache", value));
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains(message, r.SingleErrorLine());
        Assert.False(File.Exists(_scratch.File("x.png")));
    }

    [Fact]
    public void A_threshold_without_auto_is_a_usage_error()
    {
        var r = CliRunner.Run(Generate(_scratch.File("x.png"), "--cache", "interval:2", "--cache-threshold", "0.1"));
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("--cache-threshold applies to --cache auto only", r.SingleErrorLine());
        r = CliRunner.Run(Generate(_scratch.File("x.png"), "--cache", "auto", "--cache-threshold", "-1"));
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
    }

    [Fact]
    public void A_missing_or_mismatched_schedule_file_is_bad_input()
    {
        var r = CliRunner.Run(Generate(_scratch.File("x.png"), "--cache", _scratch.File("none.json")));
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Contains("none.json", r.SingleErrorLine());
        Assert.DoesNotContain("loading", r.Error); // the schedule file is read before the weights

        File.WriteAllText(_scratch.File("bad.json"), "{\"format\": \"diffusionsharp.cache-schedule\", \"version\": 7}");
        r = CliRunner.Run(Generate(_scratch.File("x.png"), "--cache", _scratch.File("bad.json")));
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Contains("bad.json", r.SingleErrorLine());
        Assert.DoesNotContain("loading", r.Error);

        string schedule = _scratch.File("s.json");
        CacheScheduleFile.Write(schedule, CacheScheduleFileTests.Sample());
        r = CliRunner.Run(Generate(_scratch.File("x.png"), "--cache", schedule));
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Contains($"Cache schedule '{schedule}': was made for the dpm2 sampler, not ddim_trailing", r.SingleErrorLine());
        Assert.False(File.Exists(_scratch.File("x.png")));
    }

    [Fact]
    public void Interval_caching_is_recorded_in_the_png_and_the_verbose_lines()
    {
        string path = _scratch.File("i.png");
        var r = CliRunner.Run(Generate(path, "--cache", "interval:2", "-v"));
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Contains(r.ErrorLines, l => l.StartsWith("cache: interval 2, skips ", StringComparison.Ordinal));
        Assert.Contains(r.ErrorLines, l => l.Contains("cache skipped ") && l.Contains(" MiB"));
        string parameters = PngReader.Read(path).Text["parameters"];
        Assert.Contains("Block cache: interval 2, Block cache skipped: \"", parameters);
    }

    [Fact]
    public void Cache_profile_writes_curves_and_schedules_that_generate_and_compare_use()
    {
        string folder = _scratch.File("profile");
        var r = CliRunner.Run("cache-profile", "-m", TestCheckpoints.MobileFolder, "--prompts", Prompts(), "--steps", "4", "--sampling-method", "ddim_trailing", "--rng", "cpu",
            "--threshold", "0.1,0.3", "-o", folder);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        string[] expected = ["curves.csv", "curves.png", "ddim_trailing.simple.4steps.delta0.1.json", "ddim_trailing.simple.4steps.delta0.1.png",
            "ddim_trailing.simple.4steps.delta0.3.json", "ddim_trailing.simple.4steps.delta0.3.png"];
        Assert.Equal(expected.Select(f => Path.Combine(folder, f)).Order(StringComparer.Ordinal), r.OutputLines.Order(StringComparer.Ordinal));
        string[] csv = File.ReadAllLines(Path.Combine(folder, "curves.csv"));
        Assert.Equal("block,channels,evaluation,l1_rel_mean,l1_rel_std", csv[0]);
        Assert.Equal(1 + 3 * TinyMobileBlocks, csv.Length);
        Assert.Contains(r.ErrorLines, l => l.StartsWith("| 0.3 | ", StringComparison.Ordinal));
        var schedule = CacheScheduleFile.Read(Path.Combine(folder, "ddim_trailing.simple.4steps.delta0.3.json"));
        Assert.Equal((4, 0.3, 2), (schedule.Target.Steps, schedule.Delta!.Value, schedule.Profile!.Prompts));

        string image = _scratch.File("c.png");
        r = CliRunner.Run("generate", "-m", TestCheckpoints.MobileFolder, "-p", "a cat", "--steps", "4", "--sampling-method", "ddim_trailing", "-o", image,
            "--cache", Path.Combine(folder, "ddim_trailing.simple.4steps.delta0.3.json"));
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        Assert.Contains("Block cache: schedule delta 0.3", PngReader.Read(image).Text["parameters"]);

        r = CliRunner.Run(Generate(image, "--cache", Path.Combine(folder, "ddim_trailing.simple.4steps.delta0.3.json")));
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Contains("was made for 4 steps, not 3", r.SingleErrorLine());

        string compared = _scratch.File("compare");
        r = CliRunner.Run("cache-profile", "compare", "-m", TestCheckpoints.MobileFolder, "--prompts", Prompts(), "--steps", "4", "--sampling-method", "ddim_trailing", "--rng", "cpu",
            "--cache", Path.Combine(folder, "ddim_trailing.simple.4steps.delta0.3.json"), "--cache", "interval:2", "-r", "1", "-o", compared);
        Assert.Equal(ExitCodes.Success, r.ExitCode);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(compared, "results.json")));
        var caches = json.RootElement.GetProperty("caches").EnumerateArray().ToArray();
        Assert.Equal(["uncached", "ddim_trailing.simple.4steps.delta0.3", "ddim_trailing.simple.4steps.delta0.3.no-scale-shift", "interval2"],
            caches.Select(c => c.GetProperty("name").GetString()));
        Assert.Equal(1.0, caches[0].GetProperty("speedup").GetDouble());
        Assert.Equal(100.0, caches[0].GetProperty("psnr_mean_db").GetDouble());
        Assert.All(caches.Skip(1), c => Assert.InRange(c.GetProperty("unet_flops_skipped").GetInt64(), 1, c.GetProperty("unet_flops").GetInt64()));
        foreach (string v in caches.Select(c => c.GetProperty("name").GetString()!))
            Assert.True(File.Exists(Path.Combine(compared, v, "0001.png")), $"{v}/0001.png is missing");
        Assert.True(File.Exists(Path.Combine(compared, "grid.png")));
    }

    /// <summary>tiny-mobile's resnets and transformers: down 1 + 2 + 4, mid 3, up 6 + 4 + 2 (layers_per_block [1, 1, 2], attention at levels 1 and 2).</summary>
    private const int TinyMobileBlocks = 22;

    [Fact]
    public void Cache_profile_refuses_bad_options_and_files()
    {
        var r = CliRunner.Run("cache-profile", "-m", TestCheckpoints.MobileFolder, "--prompts", Prompts(), "--threshold", "0.1,-2");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("--threshold takes numbers >= 0 separated by commas, not '-2'.", r.SingleErrorLine());
        r = CliRunner.Run("cache-profile", "-m", TestCheckpoints.MobileFolder);
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        r = CliRunner.Run("cache-profile", "-m", TestCheckpoints.MobileFolder, "--prompts", _scratch.File("none.txt"));
        Assert.Equal(ExitCodes.BadInput, r.ExitCode);
        Assert.Contains("none.txt", r.SingleErrorLine());
        r = CliRunner.Run("cache-profile", "compare", "-m", TestCheckpoints.MobileFolder, "--prompts", Prompts());
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        r = CliRunner.Run("cache-profile", "compare", "-m", TestCheckpoints.MobileFolder, "--prompts", Prompts(), "--cache", "interval:0");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("interval:N needs a whole number", r.SingleErrorLine());
    }

    [Fact]
    public void Help_lists_every_option_of_cache_profile_and_compare()
    {
        var command = CacheProfileCommand.Create(TextWriter.Null, TextWriter.Null);
        foreach (var (args, options) in new[] { (new[] { "cache-profile", "--help" }, command.Options.ToArray()),
                     (new[] { "cache-profile", "compare", "--help" }, command.Subcommands[0].Options.Concat(command.Options.Where(o => o.Recursive)).ToArray()) })
        {
            var r = CliRunner.Run(args);
            Assert.Equal(ExitCodes.Success, r.ExitCode);
            foreach (var option in options)
                Assert.Contains(r.OutputLines, l => l.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).Contains(option.Name));
        }
    }
}
