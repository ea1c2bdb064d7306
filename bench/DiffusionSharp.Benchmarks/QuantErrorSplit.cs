using DiffusionSharp.Evaluation;
using DiffusionSharp.Kernels.Quant;
using DiffusionSharp.Models;
using DiffusionSharp.Models.Checkpoints;
using DiffusionSharp.Nn;
using DiffusionSharp.Pipeline;
using DiffusionSharp.Quantization;
using DiffusionSharp.Sampling.Rng;

namespace DiffusionSharp.Benchmarks;

/// <summary>
/// `-- quant-error-split MODEL PROMPTS COUNT RANK [asym] [gptq] [fit=N]`: where a W4A4 layer's output error comes from,
/// per layer and as a geometric mean, on held-out calibration rows. The first COUNT prompts are generated in fp32 with
/// every UNet layer's input rows sampled (N + 256 per layer); each layer is quantized (svdquant at RANK, 10-step
/// smoothing search, 2 refinement rounds; `asym`: asymmetric activations, `gptq`: GPTQ residual) from the first N
/// rows (default 256), and its relative output error ‖Y − Ŷ‖² / ‖Y‖² is measured on the other 256, in float64, four ways
/// (the activations quantized by the kernels' reference quantizer, <c>ActivationQuantizer.QuantizeRowReference</c>):
/// W = weights quantized, activations exact; A = activations quantized, weights exact (branch + exact residual);
/// both = what the layer computes; nf4 = weight-only NF4 of the unsmoothed weight (group 64).
/// </summary>
public static unsafe class QuantErrorSplit
{
    private const int Held = 256;

    public static void Run(string[] args)
    {
        string path = args[1];
        var prompts = PromptSet.Read(args[2]).Take(int.Parse(args[3])).ToList();
        int rank = int.Parse(args[4]);
        bool asym = args.Contains("asym"), gptq = args.Contains("gptq");
        int fit = args.Where(a => a.StartsWith("fit=")).Select(a => int.Parse(a[4..])).DefaultIfEmpty(256).First();
        using var unetWeights = ModelLoader.OpenUnetWeights(path, out _);
        var keys = unetWeights.Keys.Where(k => k.EndsWith(".weight")).Select(k => k[..^7]).ToHashSet();
        using var model = ModelLoader.Load(path, new ModelLoadOptions());
        var recorder = new CalibrationRecorder(fit + Held, keys.Contains);
        var pipeline = new TextToImagePipeline(model);
        using (ActivationObserver.Install(recorder))
            foreach (var p in prompts)
                pipeline.Generate(new GenerationRequest { Prompt = p.Prompt, Seed = p.Seed, Rng = RngType.Cpu }, null, default);
        var settings = new LayerQuantizerSettings
        {
            Method = rank > 0 ? QuantizationMethods.SvdQuant : QuantizationMethods.W4A4Smooth, Rank = Math.Max(rank, 1),
            AlphaSteps = 10, LowRankIterations = 2, Gptq = gptq, AsymmetricActivations = asym,
        };
        double lw = 0, la = 0, lb = 0, ln = 0;
        int count = 0;
        foreach (var r in recorder.Layers)
        {
            if (ModelQuantizerOptions.DefaultKeep.Any(p => ModelQuantizer.Matches(p, r.Key)) || r.SampleCount < fit + Held) continue;
            var w = ModelQuantizer.Weight(r);
            var fitRecord = new CalibrationRecorder.LayerRecord(r.Key, r.Linear, r.Convolution, r.InChannels, r.OutChannels, r.KernelSize, fit);
            Array.Copy(r.ChannelMax, fitRecord.ChannelMax, r.InChannels);
            Array.Copy(r.Samples, fitRecord.Samples, (long)fit * r.K);
            fitRecord.SampleCount = fit;
            var layer = new LayerQuantizer(fitRecord, w, settings).Quantize();
            var e = Errors(r, fit, w, layer);
            Console.WriteLine($"{r.Key,-62} N {r.OutChannels,4} K {r.K,5}  W {e.W:0.00e0}  A {e.A:0.00e0}  both {e.Both:0.00e0}  nf4 {e.Nf4:0.00e0}");
            lw += Math.Log(e.W); la += Math.Log(e.A); lb += Math.Log(e.Both); ln += Math.Log(e.Nf4);
            count++;
        }
        Console.WriteLine($"geomean over {count} layers: W {Math.Exp(lw / count):0.00e0}  A {Math.Exp(la / count):0.00e0}  both {Math.Exp(lb / count):0.00e0}  nf4 {Math.Exp(ln / count):0.00e0}");
    }

    private static (double W, double A, double Both, double Nf4) Errors(CalibrationRecorder.LayerRecord r, int fit, double[] w, QuantizedLayer layer)
    {
        int n = r.OutChannels, k = r.K, g = layer.GroupSize;
        var lambda = layer.ExpandedSmooth();
        if (lambda.Length == 0) lambda = Enumerable.Repeat(1f, k).ToArray();
        var residualQ = WeightQuantizer.Dequantize(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(layer.Codes), layer.Scales, n, k, g);
        var branch = new double[n * k];
        for (int o = 0; o < n; o++)
        for (int i = 0; i < k; i++)
        {
            double s = 0;
            for (int j = 0; j < layer.Rank; j++) s += (double)layer.Up![o * layer.Rank + j] * layer.Down![i * layer.Rank + j];
            branch[o * k + i] = s;
        }
        var nf = WeightQuantizer.Nf4Groups(w, n, k, 64);
        using var matrix = (IntegerMatrix)layer.CreateMatrix();
        var codes = new sbyte[matrix.PaddedK];
        var scales = new float[matrix.Groups];
        var zeros = new float[matrix.Groups];
        var lowRank = new double[matrix.Rank];
        var xh = new double[k];
        var xq = new double[k];
        double e0 = 0, eW = 0, eA = 0, eB = 0, eN = 0;
        for (int m = 0; m < Held; m++)
        {
            fixed (float* x = &r.Samples[(long)(fit + m) * k])
                ActivationQuantizer.QuantizeRowReference(x, matrix, codes, scales, lowRank, zeros);
            for (int i = 0; i < k; i++)
            {
                xh[i] = r.Samples[(long)(fit + m) * k + i] * (double)matrix.InvSmoothAt(i);
                xq[i] = codes[i] * (double)scales[i / g] + (matrix.AsymmetricActivations ? zeros[i / g] : 0);
            }
            for (int o = 0; o < n; o++)
            {
                double y = 0, yw = 0, ya = 0, yb = 0, yn = 0;
                for (int i = 0; i < k; i++)
                {
                    double wi = w[o * k + i] * lambda[i], bi = branch[o * k + i], qi = residualQ[o * k + i];
                    y += xh[i] * wi;
                    yw += xh[i] * (bi + qi);
                    ya += xh[i] * bi + xq[i] * (wi - bi);
                    yb += xh[i] * bi + xq[i] * qi;
                    yn += r.Samples[(long)(fit + m) * k + i] * Nf4Matrix.Levels[nf.Codes[o * k + i]] * (double)nf.Absmax[o * ((k + 63) / 64) + i / 64];
                }
                e0 += y * y;
                eW += (yw - y) * (yw - y);
                eA += (ya - y) * (ya - y);
                eB += (yb - y) * (yb - y);
                eN += (yn - y) * (yn - y);
            }
        }
        return (eW / e0, eA / e0, eB / e0, eN / e0);
    }
}
