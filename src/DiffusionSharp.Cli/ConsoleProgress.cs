using System.Globalization;
using DiffusionSharp.Pipeline;

namespace DiffusionSharp.Cli;

/// <summary>
/// The progress line on stderr: a bar, steps, it/s and ETA, redrawn in place on a terminal; when stderr is redirected,
/// one line per second at most so logs stay readable.
/// </summary>
public sealed class ConsoleProgress(TextWriter error, bool interactive) : IProgress<GenerationProgress>
{
    private const int BarWidth = 24;
    private TimeSpan _lastLine = TimeSpan.FromDays(-1);
    private TimeSpan _denoiseStart;
    private int _lastImage = -1;
    private bool _lineOpen;

    public void Report(GenerationProgress p)
    {
        if (p.Stage == GenerationStage.Denoising && (p.Image != _lastImage || p.Step == 0))
        {
            if (p.Image != _lastImage) _denoiseStart = p.Elapsed;
            _lastImage = p.Image;
        }
        string text = p.Stage switch
        {
            GenerationStage.EncodingText => "encoding prompt",
            GenerationStage.Denoising => Denoising(p),
            GenerationStage.Decoding => Prefix(p) + "decoding latent",
            _ => null!,
        };
        if (p.Stage == GenerationStage.Done)
        {
            Finish();
            return;
        }
        bool last = p.Stage == GenerationStage.Denoising && p.Step == p.Steps;
        if (interactive)
        {
            error.Write("\r" + text.PadRight(Console.IsErrorRedirected ? 0 : 79));
            _lineOpen = true;
        }
        else if (p.Elapsed - _lastLine >= TimeSpan.FromSeconds(1) || last || p.Stage != GenerationStage.Denoising)
        {
            error.WriteLine(text);
            _lastLine = p.Elapsed;
        }
    }

    private string Denoising(GenerationProgress p)
    {
        int filled = p.Steps == 0 ? BarWidth : p.Step * BarWidth / p.Steps;
        double seconds = (p.Elapsed - _denoiseStart).TotalSeconds;
        double rate = p.Step > 0 && seconds > 0 ? p.Step / seconds : 0;
        string speed = rate >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{rate:0.00} it/s")
                     : rate > 0 ? string.Create(CultureInfo.InvariantCulture, $"{1 / rate:0.00} s/it") : "-- it/s";
        string eta = rate > 0 ? Format(TimeSpan.FromSeconds((p.Steps - p.Step) / rate)) : "--";
        string cache = p.Cache is { BlockEvaluations: > 0 } c ? $" | cache skipped {c.BlockSkips}/{c.BlockEvaluations} blocks" : "";
        return $"{Prefix(p)}|{new string('#', filled)}{new string('.', BarWidth - filled)}| {p.Step}/{p.Steps} {speed} ETA {eta}{cache}";
    }

    private static string Prefix(GenerationProgress p) => p.ImageCount > 1 ? $"image {p.Image + 1}/{p.ImageCount} " : "";

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture);

    /// <summary>Ends the in-place line so the next output starts on a fresh one.</summary>
    public void Finish()
    {
        if (_lineOpen) error.WriteLine();
        _lineOpen = false;
    }
}
