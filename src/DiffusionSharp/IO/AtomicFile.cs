using System.Security.Cryptography;

namespace DiffusionSharp.IO;

/// <summary>
/// Writes a file so that readers only ever see the old file or the complete new one: the content goes to
/// <c>path + ".tmp-&lt;random&gt;"</c> in the same folder, which is renamed over <c>path</c> only
/// after the writer returned; on any failure the temporary file is deleted and the exception propagates.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<FileStream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string target = Path.GetFullPath(path);
        string temp = target + ".tmp-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
                write(stream);
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
