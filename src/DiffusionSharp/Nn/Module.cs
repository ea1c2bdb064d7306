namespace DiffusionSharp.Nn;

/// <summary>
/// Base of every layer and model block: owns its child modules (disposed with it, last first) and counts
/// parameters. Modules are immutable after loading; <c>Forward</c> calls may run concurrently.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<Module> _children = [];
    private bool _disposed;

    /// <summary>Registers <paramref name="child"/> as owned by this module and returns it.</summary>
    protected T Add<T>(T child) where T : Module
    {
        _children.Add(child);
        return child;
    }

    /// <summary>Parameters held by this module itself, not its children.</summary>
    protected virtual long OwnParameterCount => 0;

    /// <summary>Number of weights and biases (elements) in this module and everything it owns.</summary>
    public long ParameterCount
    {
        get
        {
            long n = OwnParameterCount;
            foreach (var child in _children) n += child.ParameterCount;
            return n;
        }
    }

    /// <summary>Frees this module's own native memory (children are disposed by <see cref="Dispose"/>).</summary>
    protected virtual void DisposeOwned()
    {
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int i = _children.Count - 1; i >= 0; i--) _children[i].Dispose();
        DisposeOwned();
        GC.SuppressFinalize(this);
    }
}
