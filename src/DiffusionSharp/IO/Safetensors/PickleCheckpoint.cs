using System.Buffers.Binary;

namespace DiffusionSharp.IO.Safetensors;

/// <summary>
/// Recognises PyTorch pickle checkpoints (<c>.ckpt</c>, <c>.pt</c>, <c>.bin</c>) by their first bytes, so that
/// opening one as safetensors says what it is instead of "header too large". They are never unpickled:
/// unpickling runs arbitrary code from the file.
/// </summary>
internal static class PickleCheckpoint
{
    /// <summary>
    /// True for a zip archive (<c>torch.save</c> since PyTorch 1.6) or a raw pickle stream of protocol 2-5
    /// (older <c>torch.save</c>), and only when the first 8 bytes read as a header length no safetensors
    /// file can have, so no valid safetensors file is ever taken for a pickle.
    /// </summary>
    public static bool Matches(ReadOnlySpan<byte> first8)
    {
        if (first8.Length < 8 || BinaryPrimitives.ReadUInt64LittleEndian(first8) <= SafetensorsFile.MaxHeaderLength)
            return false;
        bool zip = first8[0] == (byte)'P' && first8[1] == (byte)'K' && first8[2] == 3 && first8[3] == 4;
        bool pickle = first8[0] == 0x80 && first8[1] is >= 2 and <= 5;
        return zip || pickle;
    }

    public const string Advice =
        "this looks like a PyTorch pickle checkpoint (.ckpt/.pt), not safetensors. DiffusionSharp never unpickles " +
        "files, because unpickling can run arbitrary code. Convert it once with PyTorch and the safetensors package: " +
        "python -c \"import torch, safetensors.torch as st; sd = torch.load('model.ckpt', map_location='cpu', weights_only=True); " +
        "sd = sd.get('state_dict', sd); st.save_file({k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}, 'model.safetensors')\"";
}
