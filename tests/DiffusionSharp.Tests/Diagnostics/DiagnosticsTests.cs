using System.Runtime.InteropServices;
using DiffusionSharp.Diagnostics;

namespace DiffusionSharp.Tests.Diagnostics;

/// <summary>The /proc parsers against texts in the kernel's format, and the live readers against memory this test touches.</summary>
public class DiagnosticsTests
{
    private const string Status = "Name:\tdiffusion\nVmPeak:\t 4096000 kB\nVmHWM:\t  3781632 kB\nVmRSS:\t   12345 kB\nThreads:\t3\nVmSwap:\t       0 kB\n";

    [Fact]
    public void Status_fields_are_read_in_bytes()
    {
        Assert.Equal(3781632L * 1024, ProcessMemory.ParseStatusField(Status, "VmHWM"));
        Assert.Equal(12345L * 1024, ProcessMemory.ParseStatusField(Status, "VmRSS"));
        Assert.Equal(0L, ProcessMemory.ParseStatusField(Status, "VmSwap"));
    }

    [Theory]
    [InlineData("VmHW")]      // a prefix of a field is not the field
    [InlineData("Threads")]   // not a kB count
    [InlineData("VmData")]    // absent
    public void Status_fields_that_are_not_kilobyte_counts_are_null(string field)
        => Assert.Null(ProcessMemory.ParseStatusField(Status, field));

    [Fact]
    public void Malformed_status_values_are_null()
    {
        Assert.Null(ProcessMemory.ParseStatusField("VmHWM:\t -5 kB\n", "VmHWM"));
        Assert.Null(ProcessMemory.ParseStatusField("VmHWM:\t 99999999999999999999 kB\n", "VmHWM"));
        Assert.Null(ProcessMemory.ParseStatusField("VmHWM:\t 12 MB\n", "VmHWM"));
        Assert.Null(ProcessMemory.ParseStatusField("", "VmHWM"));
    }

    [Fact]
    public unsafe void Peak_resident_memory_covers_a_touched_buffer()
    {
        const int bytes = 64 << 20;
        byte* buffer = (byte*)NativeMemory.Alloc(bytes);
        try
        {
            new Span<byte>(buffer, bytes).Fill(1);
            long resident = ProcessMemory.ResidentBytes();
            long peak = ProcessMemory.PeakResidentBytes();
            Assert.True(resident >= bytes, $"resident {resident} bytes with a {bytes}-byte buffer touched");
            // Linux updates VmHWM lazily (the high-water mark catches up with RSS at unmaps and exits), so a page freed
            // between the two reads can leave the peak a few pages below the resident size read first.
            Assert.True(peak >= bytes && peak >= resident - (1 << 20), $"peak {peak} below resident {resident}");
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    [Fact]
    public void Cpu_model_name_is_the_first_model_name_line()
    {
        const string cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 2\nmodel name\t: AMD EPYC 9R45\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: other\n";
        Assert.Equal("AMD EPYC 9R45", CpuInfo.ParseModelName(cpuinfo));
        Assert.Null(CpuInfo.ParseModelName("processor\t: 0\nmodel\t\t: 2\n"));
        Assert.Null(CpuInfo.ParseModelName("model name\t:   \n"));
        Assert.False(string.IsNullOrWhiteSpace(CpuInfo.ModelName));
    }

    [Fact]
    public void Load_average_is_the_first_field()
    {
        Assert.Equal(2.81, CpuInfo.ParseLoadAverage("2.81 3.57 3.57 4/95 14340\n"));
        Assert.Null(CpuInfo.ParseLoadAverage("busy 1 2"));
        Assert.Null(CpuInfo.ParseLoadAverage(""));
        if (OperatingSystem.IsLinux()) Assert.True(CpuInfo.LoadAverage() >= 0);
    }
}
