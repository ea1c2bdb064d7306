"""Scores a `diffusion cache-profile compare` folder with the emoji classifier: prompt, emoji and colour accuracy of
every variant's images (one sub-folder each, named as results.json names them), merged into one markdown table with
the compare's own figures (FLOPs skipped, speedup, PSNR, SSIM).

  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 /usr/bin/python3 tools/eval/score_caching.py \
      --compare cmp20 --prompts eval.json --data data/emoji64.npz [--json scores.json]

Optionally writes a small picture grid of chosen variants (rows) over the first prompts (columns):
  ... --grid docs/images/caching-grid.png --grid-rows uncached,NAME,... --grid-columns 8
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, os.path.join(HERE, "..", "data"))


def load_images(folder, entries):
    import pngio
    images = []
    for e in entries:
        rgba = pngio.read_png_rgba(os.path.join(folder, e["file"]))
        images.append(rgba[..., :3])
    return np.stack(images)


def write_grid(path, rows, pad=2):
    """rows: list of lists of [64, 64, 3] uint8 images; white gaps of `pad` pixels. Saved by Pillow with its optimizer
    (about a third smaller than pngio's unfiltered encoding: the grid is committed to docs/)."""
    from PIL import Image
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            grid[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = image
    Image.fromarray(grid).save(path, optimize=True, compress_level=9)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", required=True, help="the compare's output folder (results.json and one folder per variant)")
    parser.add_argument("--prompts", required=True, help="the JSON prompt list the compare ran (file, emoji, colour)")
    parser.add_argument("--data", default="data/emoji64.npz")
    parser.add_argument("--json", default=None, help="also write the scores here")
    parser.add_argument("--grid", default=None, help="PNG to write a grid of --grid-rows variants to")
    parser.add_argument("--grid-rows", default="uncached")
    parser.add_argument("--grid-columns", type=int, default=8)
    args = parser.parse_args()

    import torch
    from score import Scorer, DEFAULT_CLASSIFIER
    from emoji_data import EmojiData

    results = json.load(open(os.path.join(args.compare, "results.json")))
    entries = json.load(open(args.prompts))
    emoji = np.array([e["emoji"] for e in entries])
    colour = np.array([e["colour"] for e in entries])
    data = EmojiData(args.data, torch.device("cpu"))
    real = data.images(emoji, colour, np.zeros_like(emoji))
    scorer = Scorer(DEFAULT_CLASSIFIER)

    print(f"{results['model']}, {results['sampler']} {results['scheduler']}, {results['steps']} steps, "
          f"{results['prompts']} prompts x {results['repeats']} runs, load average "
          f"{results.get('load_average_before', float('nan')):.1f} -> {results.get('load_average_after', float('nan')):.1f}\n")
    print("| cache | UNet FLOPs skipped | speedup | PSNR dB mean (min) | SSIM mean | prompt acc | emoji acc | colour acc | FD |")
    print("|---|---|---|---|---|---|---|---|---|")
    scores = {}
    for cache in results["caches"]:
        images = load_images(os.path.join(args.compare, cache["name"]), entries)
        tensor = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        s = scorer.score(tensor, emoji, colour, real)
        scores[cache["name"]] = s
        skipped = 100 * cache["unet_flops_skipped"] / cache["unet_flops"] if cache["unet_flops"] else 0
        quality = "- | -" if cache["name"] == "uncached" else f"{cache['psnr_mean_db']:.2f} ({cache['psnr_min_db']:.2f}) | {cache['ssim_mean']:.4f}"
        print(f"| {cache['name']} | {skipped:.1f}% | {cache['speedup']:.2f}x | {quality} | {s['prompt_acc']:.3f} | "
              f"{s['emoji_acc']:.3f} | {s['colour_acc']:.3f} | {s['fd']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(scores, f, indent=1)
    if args.grid:
        rows = [list(load_images(os.path.join(args.compare, name), entries[:args.grid_columns]))
                for name in args.grid_rows.split(",")]
        write_grid(args.grid, rows)
        print(f"\n{args.grid}: rows {args.grid_rows}")


if __name__ == "__main__":
    main()
