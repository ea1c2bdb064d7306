using System.Collections;
using System.Runtime.CompilerServices;

namespace DiffusionSharp.Models.Configs;

/// <summary>
/// An immutable list with value equality, so that config records compare and hash by content
/// (<c>UnetConfig.Sd15 == UnetConfig.FromJson(UnetConfig.Sd15.ToJson(), ...)</c>). Write it as a collection
/// expression: <c>BlockOutChannels = [320, 640, 1280, 1280]</c>.
/// </summary>
[CollectionBuilder(typeof(ValueList), nameof(ValueList.Create))]
public sealed class ValueList<T> : IReadOnlyList<T>, IEquatable<ValueList<T>>
{
    private readonly T[] _items;

    internal ValueList(T[] items) => _items = items;

    public int Count => _items.Length;

    public T this[int index] => _items[index];

    public bool Equals(ValueList<T>? other)
        => other is not null && _items.AsSpan().SequenceEqual(other._items, EqualityComparer<T>.Default);

    public override bool Equals(object? obj) => Equals(obj as ValueList<T>);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in _items) hash.Add(item);
        return hash.ToHashCode();
    }

    public static bool operator ==(ValueList<T>? a, ValueList<T>? b) => a is null ? b is null : a.Equals(b);

    public static bool operator !=(ValueList<T>? a, ValueList<T>? b) => !(a == b);

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    public override string ToString() => "[" + string.Join(", ", _items) + "]";
}

public static class ValueList
{
    public static ValueList<T> Create<T>(ReadOnlySpan<T> items) => new(items.ToArray());

    /// <summary><paramref name="count"/> copies of <paramref name="value"/>.</summary>
    public static ValueList<T> Repeat<T>(T value, int count) => new(Enumerable.Repeat(value, count).ToArray());
}
