namespace DiffusionSharp.Caching;

/// <summary>
/// A block-caching policy for generation (<c>GenerationRequest.Cache</c>): a profiled schedule
/// (<see cref="ScheduledCaching"/>), a fixed interval (<see cref="IntervalCaching"/>), or the recorders that profiling
/// runs with (<see cref="ChangeCurveRecorder"/>, <see cref="ScaleShiftFitter"/>). The pipeline calls
/// <see cref="Prepare"/> once per request, then <see cref="IBlockCacheRun.StartImage"/> for each image, and hands the
/// session to every UNet call of that image.
/// </summary>
public abstract class BlockCaching
{
    /// <summary>How the policy is named in the PNG parameters ("interval 3", "schedule delta 0.1 + scale/shift").</summary>
    public abstract string Description { get; }

    /// <summary>
    /// Checks the policy against the run and readies it. A schedule made for another model, sampler, spacing or step
    /// count throws <see cref="CacheScheduleException"/>.
    /// </summary>
    public abstract IBlockCacheRun Prepare(CacheTarget target);
}

/// <summary>A prepared policy: hands out one fresh cache per image.</summary>
public interface IBlockCacheRun
{
    BlockCacheSession StartImage();
}
