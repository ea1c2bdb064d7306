namespace DiffusionSharp.Sampling.Rng;

/// <summary>Which tool's normal noise a seed reproduces (stable-diffusion.cpp <c>--rng</c>).</summary>
public enum RngType
{
    /// <summary>CUDA <c>torch.randn</c> (<see cref="PhiloxGenerator"/>): A1111's default "GPU" source and "NV", sd.cpp's default.</summary>
    Cuda,

    /// <summary>CPU <c>torch.randn</c> (<see cref="TorchCpuGenerator"/>): ComfyUI, A1111's "CPU" source.</summary>
    Cpu,
}
