"""Exports a trained variant as a diffusers-layout model folder with the engine's defaults and a model card.

  /usr/bin/python3 tools/train/export.py --weights runs/c --logs runs/a/log.jsonl runs/b/log.jsonl runs/c/log.jsonl \\
      --name emoji-mobile --out models/emoji-mobile [--variant student_8] [--cfg 3]

Writes models/<name>/:
  model_index.json, unet/, text_encoder/, vae/ (config.json + fp16 safetensors, via sdref.save_diffusers)
  scheduler/scheduler_config.json   DDIMScheduler, scaled_linear 0.00085..0.012, 1000 steps, v_prediction,
                                    timestep_spacing "trailing", set_alpha_to_one true
  diffusionsharp.json               the engine's defaults: sampler, steps, cfg, size, guidance-embedding input
  README.md                         model card (data, licence, architecture, training compute, metrics)
  LICENSE-Apache-2.0-noto-emoji.txt, LICENSE-MIT-emojilib.txt, LICENSE-MIT-emoji-datasource.txt, NOTICE
  tokenizer/ (with --with-tokenizer: vocab.json, merges.txt, configs; the engine has CLIP's tokenizer built in)
  example.png                       the default prompt at the default settings, seed 0
Checks: the fp16 weights stay under --max-mb (40), and the folder loads back (sdref.load_diffusers) to the
exported weights exactly.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import sampling  # noqa: E402
import sdref  # noqa: E402
import stages  # noqa: E402
from common import count_parameters, log  # noqa: E402
from evaluate import read_records, render_report  # noqa: E402
from store import Store  # noqa: E402

LICENCES = os.path.join(common.TOOLS, "data", "licenses")
DEFAULT_PROMPT = "a red apple on a blue background"


def scheduler_config():
    return {
        "_class_name": "DDIMScheduler",
        "_diffusers_version": "0.27.2",
        "beta_start": sampling.BETA_START,
        "beta_end": sampling.BETA_END,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": sampling.NUM_TRAIN_TIMESTEPS,
        "prediction_type": "v_prediction",
        "timestep_spacing": "trailing",
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "clip_sample": False,
        "trained_betas": None,
    }


def engine_defaults(unet_config, steps, cfg):
    guided = unet_config.time_cond_proj_dim is not None
    return {
        # Read by the engine (src/DiffusionSharp/Models/Checkpoints/ModelDefaults.cs): DDIM (eta 0) on the trailing
        # grid t_k = 999 - k*1000/N is the engine's ddim_trailing sampler with sd.cpp's "simple" spacing.
        "sampler": "ddim_trailing",
        "scheduler": "simple",
        "guidance_embedding_offset": 1.0 if guided else 0.0,
        "steps": steps,
        "cfg_scale": cfg,
        "width": 64,
        "height": 64,
        "guidance_embedding": {
            "enabled": guided,
            "input": "cfg_scale - 1",
            "scale": 1000.0,
            "dim": unet_config.time_cond_proj_dim,
            "note": "the UNet takes the guidance scale through time_embedding.cond_proj "
                    "(diffusers get_guidance_scale_embedding); run ONE conditional pass per step, no uncond branch",
        } if guided else {"enabled": False},
        "noise": "x = noise * sigma_0 (k-diffusion convention); sigma_0 = sigma(t=999)",
        "tokenizer": {"kind": "clip-bpe", "max_length": 77, "pad_token_id": 49407},
        "example_prompt": DEFAULT_PROMPT,
    }


def write_tokenizer(folder):
    from clip_tokenizer import ClipTokenizer
    tok = ClipTokenizer()
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    merges = sorted(tok.bpe_ranks, key=tok.bpe_ranks.get)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(dict(special, model_max_length=77, do_lower_case=True, errors="replace", add_prefix_space=False,
                       tokenizer_class="CLIPTokenizer"), f, indent=2)


def training_summary(records):
    """Per stage: steps, seconds (from the last progress line of each run) and throughput."""
    rows = {}
    for r in records:
        if r.get("stage") in ("vae", "teacher", "teacher_relu") or str(r.get("stage", "")).startswith("student_"):
            if "loss" in r:
                rows[r["stage"]] = r
    return rows


def model_card(name, variant, store, records, eval_records, steps, cfg, devices):
    unet, text, vae = store[variant], store["text_encoder"], store["vae"]
    uc = unet.config
    params = {k: count_parameters(store[k].module) for k in (variant, "text_encoder", "vae")}
    total = sum(params.values())
    summary = training_summary(records)
    lines = [
        f"# {name}", "",
        "A small text-to-image latent diffusion model trained by the DiffusionSharp project, so that the engine "
        "draws a real picture out of the box. It draws one emoji on a plain background, 64x64 pixels:", "",
        "    diffusion generate -p \"" + DEFAULT_PROMPT + "\"", "",
        "Trained on Noto Emoji images (c) Google, Apache-2.0, via emoji-datasource-google. See NOTICE and the "
        "LICENSE-* files; the data set, captions and held-out split are described in docs/DATA_CARD.md.", "",
        "## Architecture", "",
        "| component | class | parameters | notes |", "|---|---|---:|---|",
        f"| text encoder | CLIPTextModel | {params['text_encoder'] / 1e6:.2f} M | CLIP BPE vocabulary (49408), width "
        f"{text.config.hidden_size}, {text.config.num_hidden_layers} layers, 77 positions, trained from scratch |",
        f"| UNet | UNet2DConditionModel | {params[variant] / 1e6:.2f} M | MobileDiffusion layout: channels "
        f"{uc.block_out_channels}, resnets per level {uc.layers_per_block}, transformers per level "
        f"{uc.transformer_layers_per_block} (none at 16x16; cross-attention only at 8x8; self+cross at 4x4) + "
        f"{uc.mid_block_transformer_layers} in the mid block, shared K/V, {uc.attention_activation} attention, "
        f"{uc.ff_activation} ff x{uc.ff_mult}, separable convs {uc.separable_conv_per_block}"
        + (f", guidance embedding ({uc.time_cond_proj_dim})" if uc.time_cond_proj_dim else "") + " |",
        f"| VAE | AutoencoderKL | {params['vae'] / 1e6:.2f} M | f4: 64x64x3 <-> 16x16x{vae.config.latent_channels}, "
        f"channels {vae.config.block_out_channels}, scaling_factor {vae.config.scaling_factor:.5f} |",
        f"| total | | {total / 1e6:.2f} M | {2 * total / 1e6:.1f} MB in fp16 |", "",
        f"Prediction: v, scaled_linear betas 0.00085..0.012, 1000 steps. Defaults (diffusionsharp.json): DDIM on "
        f"the trailing grid, {steps} steps, cfg {cfg:g}"
        + (" passed to the UNet's guidance embedding (one UNet call per step)." if uc.time_cond_proj_dim else
           " with classifier-free guidance (two UNet calls per step).") + "", "",
        "## Training", "",
        f"Device(s): {', '.join(sorted(devices)) or 'unknown'}. Stages (from the run logs):", "",
        "| stage | steps | it/s | batch | final loss |", "|---|---:|---:|---:|---:|",
    ]
    for stage, r in summary.items():
        lines.append(f"| {stage} | {r['step']} | {r.get('it_s', '-')} | {r.get('batch', '-')} | {r['loss']:.4f} |")
    vae_rec = [r for r in records if r.get("stage") == "vae" and "scaling_factor" in r]
    if vae_rec:
        psnr = {k[5:]: v for k, v in vae_rec[-1].items() if k.startswith("psnr_")}
        lines += ["", "VAE reconstruction PSNR: " + ", ".join(f"{k} {v:.2f} dB" for k, v in psnr.items()) + "."]
    lines += ["", "Recipe and commands: docs/TRAINING.md.", "", "## Metrics", "",
              "Scored by the emoji/colour classifier in tools/eval (prompt accuracy = both the emoji and the "
              "background colour recognised), on prompts \"<name> on a <colour> background\" for (emoji, colour) "
              "pairs never shown in training:", ""]
    lines.append(render_report(eval_records) if eval_records else "No evaluation records were found.\n")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="folder with weight shards (a GPU run's --out)")
    parser.add_argument("--logs", nargs="*", default=[], help="log.jsonl files of the runs (metrics, compute)")
    parser.add_argument("--name", default="emoji-mobile")
    parser.add_argument("--out", default=None, help="default models/<name>")
    parser.add_argument("--variant", default=None, help="default: student_8, else the latest student, else teacher_relu")
    parser.add_argument("--steps", type=int, default=None, help="default: the student's step count, 8 for teachers")
    parser.add_argument("--cfg", type=float, default=stages.DEFAULT_CFG)
    parser.add_argument("--with-tokenizer", action="store_true")
    parser.add_argument("--max-mb", type=float, default=40.0)
    parser.add_argument("--data", default="data/emoji64.npz", help="for example.png (skipped if missing)")
    args = parser.parse_args()

    store = Store.load(args.weights)
    if not store.artefacts:
        raise SystemExit(f"{args.weights}: no weight shards")
    variant = args.variant or ("student_8" if "student_8" in store else store.latest_student or "teacher_relu")
    for needed in (variant, "text_encoder", "vae"):
        if needed not in store:
            raise SystemExit(f"{args.weights}: no {needed} (has {', '.join(sorted(store.artefacts))})")
    unet = store[variant]
    steps = args.steps or unet.progress.get("sampling_steps") or 8
    out = args.out or os.path.join(common.TOOLS, "..", "models", args.name)
    if os.path.exists(out):
        shutil.rmtree(out)
    models = sdref.StableDiffusionModels(unet.module.eval(), store["text_encoder"].module.eval(),
                                         store["vae"].module.eval(), scheduler_config())
    sdref.save_diffusers(models, out, "fp16")
    weight_bytes = sum(os.path.getsize(os.path.join(out, sub, f)) for sub in ("unet", "text_encoder", "vae")
                       for f in os.listdir(os.path.join(out, sub)) if f.endswith(".safetensors"))
    if weight_bytes > args.max_mb * 1e6:
        raise SystemExit(f"fp16 weights are {weight_bytes / 1e6:.1f} MB, over --max-mb {args.max_mb}")
    back = sdref.load_diffusers(out, "fp32")
    for mine, theirs, label in ((unet.module, back.unet, "unet"), (store["text_encoder"].module, back.text_encoder,
                                                                    "text_encoder"), (store["vae"].module, back.vae, "vae")):
        a, b = mine.state_dict(), theirs.state_dict()
        if a.keys() != b.keys() or any(not torch.equal(a[k].half().float(), b[k]) for k in a):
            raise SystemExit(f"{label}: the exported folder does not load back to the exported weights")
    with open(os.path.join(out, "diffusionsharp.json"), "w") as f:
        json.dump(engine_defaults(unet.config, steps, args.cfg), f, indent=2)
        f.write("\n")
    for src, dst in (("Apache-2.0-noto-emoji.txt", "LICENSE-Apache-2.0-noto-emoji.txt"),
                     ("MIT-emojilib.txt", "LICENSE-MIT-emojilib.txt"),
                     ("MIT-emoji-datasource.txt", "LICENSE-MIT-emoji-datasource.txt"), ("NOTICE", "NOTICE")):
        shutil.copyfile(os.path.join(LICENCES, src), os.path.join(out, dst))
    if args.with_tokenizer:
        write_tokenizer(os.path.join(out, "tokenizer"))
        index_path = os.path.join(out, "model_index.json")
        index = json.load(open(index_path))
        index["tokenizer"] = ["transformers", "CLIPTokenizer"]
        with open(index_path, "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
    records, devices = [], set()
    for path in args.logs:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    records.append(r)
                    if r.get("stage") == "run":
                        devices.add(r.get("device", "?"))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(model_card(args.name, variant, store, records, read_records(args.logs), steps, args.cfg, devices))
    if os.path.isfile(args.data):
        write_example(store, variant, args.data, steps, args.cfg, os.path.join(out, "example.png"))
    log(f"exported {variant} ({steps} steps, cfg {args.cfg:g}) to {out}: fp16 weights {weight_bytes / 1e6:.1f} MB")


def write_example(store, variant, data_path, steps, cfg, path):
    import captions
    from compose import to_uint8
    from emoji_data import EmojiData
    from pngio import write_png
    device = torch.device("cpu")
    data = EmojiData(data_path, device)
    ctx = stages.Context(data, device, store, None, None, None)
    name, colour = "red apple", "blue"
    if name not in data.names:
        return
    bank = data.bank  # DEFAULT_PROMPT, assembled from caption pieces like the training captions
    row = [bank.index["a"], bank.name[data.names.index(name)], bank.index["on"], bank.index["a"],
           bank.colour[captions.COLOUR_NAMES.index(colour)], bank.index["background"]]
    row += [bank.empty] * (captions.MAX_SLOTS - len(row))
    tokens = torch.as_tensor(bank.tokens(np.array([row])))
    if bank.text(np.array([row]))[0] != DEFAULT_PROMPT:
        raise ValueError(f"example prompt assembled as {bank.text(np.array([row]))[0]!r}")
    image = stages.generate(ctx, store[variant].module, tokens, steps, cfg, [0])
    write_png(path, to_uint8(image)[0], {"parameters": f"{DEFAULT_PROMPT}\nSteps: {steps}, Sampler: DDIM, "
                                                       f"CFG scale: {cfg:g}, Seed: 0, Size: 64x64"})


if __name__ == "__main__":
    main()
