namespace DiffusionSharp.Sampling;

/// <summary>
/// The sampler fields of an A1111 "parameters" text, in the form A1111 writes since 1.9: the schedule is its own field,
/// <c>Sampler: DPM++ 2M, Schedule type: Karras</c>, rather than the older combined label <c>Sampler: DPM++ 2M Karras</c>
/// (which <see cref="SamplerRegistry.Parse"/> still reads).
/// </summary>
public readonly record struct SamplerInfotext(string Sampler, string ScheduleType)
{
    public override string ToString() => $"Sampler: {Sampler}, Schedule type: {ScheduleType}";
}
