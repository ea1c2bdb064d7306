using System.Text;
using DiffusionSharp.Caching;
using DiffusionSharp.Tests.IO;

namespace DiffusionSharp.Tests.Caching;

/// <summary>
/// Schedule files: a schedule survives writing and reading exactly; every malformed field is a
/// <see cref="CacheScheduleException"/> naming the file and the field; random damage never escapes as another exception.
/// </summary>
public sealed class CacheScheduleFileTests : IDisposable
{
    private readonly TempFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    internal static CacheSchedule Sample()
    {
        var blocks = new[]
        {
            new BlockSchedule("down_blocks.0.resnets.0", 3, [true, false, true, false], [double.NaN, 0.01, 0.3, 1e-5],
                [null, new ChannelCorrection([1.5f, -0.25f, 1e-7f], [0.1f, 0f, -3.75f]), null, null]),
            new BlockSchedule("mid_block.attentions.0", 2, [true, true, true, true], null, new ChannelCorrection?[4]),
        };
        return new CacheSchedule
        {
            Target = new ScheduleTarget("tiny", "0123456789", "dpm2", "karras", 2, 4),
            Delta = 0.125,
            Profile = new ProfileConditions(5, 64, 32, 7.5),
            Blocks = blocks,
        };
    }

    [Fact]
    public void A_schedule_round_trips_exactly()
    {
        string path = _scratch.File("s.json");
        var written = Sample();
        CacheScheduleFile.Write(path, written);
        var read = CacheScheduleFile.Read(path);
        Assert.Equal(written.Target, read.Target);
        Assert.Equal(written.Delta, read.Delta);
        Assert.Equal(written.Profile, read.Profile);
        Assert.Equal(written.Blocks.Count, read.Blocks.Count);
        for (int i = 0; i < written.Blocks.Count; i++)
        {
            var (w, r) = (written.Blocks[i], read.Blocks[i]);
            Assert.Equal((w.Key, w.Channels), (r.Key, r.Channels));
            Assert.Equal(w.Recompute, r.Recompute);
            Assert.Equal(w.Change, r.Change);
            for (int e = 0; e < w.Corrections.Length; e++)
            {
                Assert.Equal(w.Corrections[e]?.Scale, r.Corrections[e]?.Scale);
                Assert.Equal(w.Corrections[e]?.Shift, r.Corrections[e]?.Shift);
            }
        }
        Assert.True(read.HasScaleShift);
        Assert.Equal(2, read.SkippedBlockEvaluations);
        Assert.Equal(File.ReadAllText(path), CacheScheduleFile.ToJson(read));
    }

    /// <summary>A valid file's text with <paramref name="from"/> replaced by <paramref name="to"/>.</summary>
    private static string Edited(string from, string to)
    {
        string json = CacheScheduleFile.ToJson(Sample());
        Assert.Contains(from, json);
        return json.Replace(from, to);
    }

    public static TheoryData<string, string, string> Malformed() => new()
    {
        { "\"format\": \"diffusionsharp.cache-schedule\"", "\"format\": \"something-else\"", "not a cache schedule" },
        { "\"version\": 1", "\"version\": 2", "format version 2 is not supported" },
        { "\"model_hash\": \"0123456789\",", "", "\"model_hash\" is missing" },
        { "\"steps\": 2", "\"steps\": 0", "\"steps\" must be a whole number" },
        { "\"evaluations\": 4", "\"evaluations\": 1", "\"evaluations\" must be a whole number from 2" },
        { "\"delta\": 0.125", "\"delta\": -1", "\"delta\" must not be negative" },
        { "\"sampler\": \"dpm2\"", "\"sampler\": 7", "\"sampler\" must be a non-empty string" },
        { "\"recompute\": [0, 2]", "\"recompute\": [1, 2]", "must start with 0" },
        { "\"recompute\": [0, 2]", "\"recompute\": [0, 2, 2]", "increasing order" },
        { "\"recompute\": [0, 2]", "\"recompute\": [0, 4]", "not an evaluation index from 0 to 3" },
        { "\"recompute\": [0, 2]", "\"recompute\": []", "non-empty array" },
        { "\"channels\": 3", "\"channels\": 0", "\"blocks[0].channels\" must be a whole number" },
        { "\"evaluation\": 1", "\"evaluation\": 2", "is a recompute step" },
        { "[1.5, -0.25, 1E-07]", "[1.5, -0.25]", "must be an array of 3 numbers" },
        { "[1.5, -0.25, 1E-07]", "[1.5, -0.25, 1e99]", "outside the float range" },
        { "\"key\": \"mid_block.attentions.0\"", "\"key\": \"down_blocks.0.resnets.0\"", "appears twice" },
        { "\"change\": [null, 0.01, 0.3, 1E-05]", "\"change\": [null, 0.01]", "change must be an array of 4 numbers" },
        { "\"blocks\": [", "\"blocks\": [], \"x\": [", "\"blocks\" holds 0 entries" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void A_malformed_field_is_named(string from, string to, string message)
    {
        string path = _scratch.Write("bad.json", Encoding.UTF8.GetBytes(Edited(from, to)));
        var e = Assert.Throws<CacheScheduleException>(() => CacheScheduleFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(message, e.Message);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void Not_json_an_array_and_a_missing_file_are_clear_errors()
    {
        string notJson = _scratch.Write("a.json", Encoding.UTF8.GetBytes("{ \"format\": "));
        Assert.Contains("not valid JSON", Assert.Throws<CacheScheduleException>(() => CacheScheduleFile.Read(notJson)).Message);
        string array = _scratch.Write("b.json", Encoding.UTF8.GetBytes("[1, 2]"));
        Assert.Contains("JSON object", Assert.Throws<CacheScheduleException>(() => CacheScheduleFile.Read(array)).Message);
        string deep = _scratch.Write("c.json", Encoding.UTF8.GetBytes(new string('[', 100) + new string(']', 100)));
        Assert.Contains("not valid JSON", Assert.Throws<CacheScheduleException>(() => CacheScheduleFile.Read(deep)).Message);
        Assert.Throws<FileNotFoundException>(() => CacheScheduleFile.Read(_scratch.File("missing.json")));
    }

    [Fact]
    public void Random_damage_is_either_read_or_refused_as_a_schedule_error()
    {
        byte[] valid = Encoding.UTF8.GetBytes(CacheScheduleFile.ToJson(Sample()));
        var random = new Random(11);
        int refused = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            byte[] bytes = (byte[])valid.Clone();
            switch (trial % 3)
            {
                case 0: bytes = bytes[..random.Next(bytes.Length)]; break;
                case 1:
                    for (int k = 0; k < 1 + trial % 5; k++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                default:
                    for (int k = 0; k < 1 + trial % 4; k++) bytes[random.Next(bytes.Length)] = (byte)"0123456789-.,[]{}\":en"[random.Next(21)];
                    break;
            }
            try
            {
                var schedule = CacheScheduleFile.Parse(bytes, "fuzz.json");
                Assert.All(schedule.Blocks, b => Assert.True(b.Recompute[0]));
            }
            catch (CacheScheduleException)
            {
                refused++;
            }
        }
        Assert.True(refused > 300, $"only {refused} of 400 damaged files were refused");
    }
}
