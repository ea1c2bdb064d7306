using DiffusionSharp.Kernels.Conv;

namespace DiffusionSharp.Nn;

/// <summary>Sees the input of every <see cref="Linear"/> and <see cref="Conv2d"/> forward (calibration for quantization).</summary>
public unsafe interface IActivationObserver
{
    /// <summary><paramref name="x"/>: <paramref name="rows"/> rows of <see cref="Linear.InFeatures"/> values.</summary>
    void ObserveLinear(Linear layer, float* x, int rows);

    /// <summary><paramref name="x"/>: the input of a convolution of geometry <paramref name="geometry"/> (channels-last).</summary>
    void ObserveConvolution(Conv2d layer, float* x, in Conv2dGeometry geometry);
}

/// <summary>
/// The observer installed on the current thread (layers run their forward on the calling thread; their kernels
/// parallelize inside). Nothing is installed by default, and the check costs one thread-static read per layer call.
/// </summary>
public static class ActivationObserver
{
    [ThreadStatic] private static IActivationObserver? t_current;

    public static IActivationObserver? Current => t_current;

    /// <summary>Installs <paramref name="observer"/> until the returned scope is disposed.</summary>
    public static Scope Install(IActivationObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var previous = t_current;
        t_current = observer;
        return new Scope(previous);
    }

    public readonly struct Scope(IActivationObserver? previous) : IDisposable
    {
        public void Dispose() => t_current = previous;
    }
}
