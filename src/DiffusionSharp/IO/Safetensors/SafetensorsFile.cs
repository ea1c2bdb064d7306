using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// A safetensors file, memory-mapped read-only: tensor bytes are views into the mapping, never copied until a
/// conversion asks for it. The header is validated on <see cref="Open"/> exactly as the reference parser does
/// (see docs/FORMATS.md); any fault is a <see cref="SafetensorsFormatException"/> naming the file and tensor.
/// Spans and pointers handed out are valid until <see cref="Dispose"/>. Reading is thread-safe.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The reference parser's limit on the JSON header (MAX_HEADER_SIZE), checked before anything is read.</summary>
    public const long MaxHeaderLength = 100_000_000;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, SafetensorInfo> _byName;
    private byte* _data; // start of the data buffer (file byte 8 + N); null once disposed

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* data,
        long dataStart, Dictionary<string, string> metadata, SafetensorInfo[] tensors)
    {
        Path = path;
        _map = map;
        _view = view;
        _data = data;
        DataStart = dataStart;
        Metadata = metadata;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened with; error messages name it.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> entries (string to string), empty when the header has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor, in the order their data lies in the file (by data offset).</summary>
    public IReadOnlyList<SafetensorInfo> Tensors { get; }

    /// <summary>File offset of the data buffer: 8 + the header length.</summary>
    public long DataStart { get; }

    /// <summary>
    /// Opens and validates <paramref name="path"/>. A missing file throws <see cref="FileNotFoundException"/>;
    /// a file that is not valid safetensors, a PyTorch pickle checkpoint included, throws <see cref="SafetensorsFormatException"/>.
    /// </summary>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.RandomAccess);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        bool pointerAcquired = false;
        try
        {
            long length = stream.Length;
            Span<byte> prefix = stackalloc byte[8];
            int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
            if (PickleCheckpoint.Matches(prefix[..got]))
                throw SafetensorsFormatException.For(path, PickleCheckpoint.Advice);
            if (length < 8)
                throw SafetensorsFormatException.For(path, $"the file is {length} bytes long, too short for the 8-byte header length of a safetensors file.");
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (n > MaxHeaderLength)
                throw SafetensorsFormatException.For(path, $"the header length {n} exceeds the {MaxHeaderLength:N0}-byte limit: not a safetensors file, or a corrupt one.");
            if (8 + (long)n > length)
                throw SafetensorsFormatException.For(path, $"the header length {n} runs past the end of the {length}-byte file.");

            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            pointerAcquired = true;
            start += view.PointerOffset;

            long dataStart = 8 + (long)n;
            var (metadata, tensors) = SafetensorsHeader.Parse(new ReadOnlySpan<byte>(start + 8, (int)n), length - dataStart, path);
            return new SafetensorsFile(path, map, view, start + dataStart, dataStart, metadata, tensors);
        }
        catch
        {
            if (pointerAcquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// True when the file starts like a PyTorch pickle checkpoint (zip archive or raw pickle) and cannot be
    /// safetensors. For the model loader, to pick the right message for a <c>.ckpt</c>; it reads 8 bytes.
    /// </summary>
    public static bool LooksLikePickle(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        Span<byte> prefix = stackalloc byte[8];
        int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        return PickleCheckpoint.Matches(prefix[..got]);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public bool TryGetInfo(string name, out SafetensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>The entry of <paramref name="name"/>; a missing tensor throws <see cref="KeyNotFoundException"/> naming file and tensor.</summary>
    public SafetensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out var info)
            ? info
            : throw new KeyNotFoundException($"{Path}: no tensor named '{name}' (the file has {_byName.Count}).");

    /// <summary>The tensor's bytes, zero-copy. Tensors of 2 GiB or more need <see cref="GetPointer"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(SafetensorInfo tensor)
    {
        byte* p = GetPointer(tensor);
        if (tensor.ByteLength > int.MaxValue)
            throw new NotSupportedException($"{Path}: tensor '{tensor.Name}' is {tensor.ByteLength} bytes, too large for a span; use GetPointer.");
        return new ReadOnlySpan<byte>(p, (int)tensor.ByteLength);
    }

    /// <summary>Pointer to the tensor's first byte in the mapping, at whatever alignment the file has.</summary>
    public byte* GetPointer(SafetensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_data == null, this);
        if (!_byName.TryGetValue(tensor.Name, out var own) || !ReferenceEquals(own, tensor))
            throw new ArgumentException($"{Path}: the entry for '{tensor.Name}' does not come from this file.", nameof(tensor));
        return _data + tensor.DataOffset;
    }

    /// <summary>
    /// Converts the tensor to float32 into <paramref name="destination"/>, which must hold exactly its element count.
    /// Reads F32, F16, BF16, F64, the integer types and the FP8 types; BOOL, F4, F6 and C64 throw <see cref="NotSupportedException"/>.
    /// </summary>
    public void ReadFloat32(string name, Span<float> destination) => ReadFloat32(GetInfo(name), destination);

    /// <summary>The tensor converted to a new float32 array (see <see cref="ReadFloat32(string, Span{float})"/>).</summary>
    public float[] ReadFloat32(string name) => ReadFloat32(GetInfo(name));

    public void ReadFloat32(SafetensorInfo tensor, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (destination.Length != tensor.ElementCount)
            throw new ArgumentException(
                $"{Path}: tensor '{tensor.Name}' ({tensor.DType.ToHeaderString()} {SafetensorInfo.FormatShape(tensor.Shape)}) has {tensor.ElementCount} elements but the destination holds {destination.Length}.",
                nameof(destination));
        if (!tensor.DType.CanConvertToFloat32())
            throw new NotSupportedException($"{Path}: tensor '{tensor.Name}' has dtype {tensor.DType.ToHeaderString()}, which cannot be read as float32.");
        DTypeConversion.ToFloat32(tensor.DType, GetBytes(tensor), destination);
        ReleasePages(tensor);
    }

    /// <summary>
    /// Tells the OS that this process no longer needs the mapped pages wholly inside <paramref name="tensor"/>'s bytes
    /// (Linux <c>madvise(MADV_DONTNEED)</c>; a no-op elsewhere). The file stays mapped: a later access reads the pages
    /// back from the page cache. Converting a checkpoint tensor by tensor then keeps only the converted copy resident,
    /// not the whole file as well (about 2 GB less peak memory for SD 1.5).
    /// </summary>
    public void ReleasePages(SafetensorInfo tensor)
    {
        if (!OperatingSystem.IsLinux()) return;
        byte* start = GetPointer(tensor);
        long page = Environment.SystemPageSize;
        long first = ((long)start + page - 1) / page * page;
        long end = ((long)start + tensor.ByteLength) / page * page;
        if (end > first) _ = Madvise((void*)first, (nuint)(end - first), MadviseDontNeed);
    }

    private const int MadviseDontNeed = 4;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise")]
    private static extern int Madvise(void* address, nuint length, int advice);

    public float[] ReadFloat32(SafetensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ElementCount > Array.MaxLength)
            throw new NotSupportedException($"{Path}: tensor '{tensor.Name}' has {tensor.ElementCount} elements, more than one array holds.");
        var values = GC.AllocateUninitializedArray<float>((int)tensor.ElementCount);
        ReadFloat32(tensor, values);
        return values;
    }

    public void Dispose()
    {
        if (_data == null) return;
        _data = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    public override string ToString() => $"{Path} ({Tensors.Count} tensors)";
}
