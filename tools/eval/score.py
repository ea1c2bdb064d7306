"""Scores generated images against their prompts with the emoji classifier.

Metrics, for images generated from "<name> on a <colour> background" prompts:
  prompt accuracy   both the emoji and the colour predicted right
  emoji accuracy    the emoji right (1906-way)
  colour accuracy   the background colour right (12-way)
  FD                Frechet distance between the classifier's 128-d penultimate features of the generated
                    images and of the real composited images of the same (emoji, colour) pairs
                    (FID's formula on this classifier's features; comparable only at equal sample counts)

As a library: Scorer(classifier_path, device).score(images, emoji, colour, real_images).
As a tool, for PNGs made elsewhere (e.g. by the C# engine from the prompt list evaluate.py writes):
  /usr/bin/python3 tools/eval/score.py --data data/emoji64.npz --prompts prompts.json --images DIR
prompts.json: [{"file": "000.png", "emoji": 12, "colour": 3, "prompt": "..."}, ...]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import common  # noqa: E402,F401  (sets the import paths)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from classifier import load_classifier  # noqa: E402

DEFAULT_CLASSIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emoji_classifier.safetensors")


def frechet_distance(a, b):
    """FD between Gaussians fitted to feature rows a [N, D] and b [M, D], in float64:
    |mu_a - mu_b|^2 + tr(Sa) + tr(Sb) - 2 tr((Sa^1/2 Sb Sa^1/2)^1/2), the square roots by symmetric eigensolves."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ sb @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


class Scorer:
    def __init__(self, classifier_path=DEFAULT_CLASSIFIER, device="cpu"):
        self.model, self.meta = load_classifier(classifier_path, device)
        self.device = device

    @torch.no_grad()
    def predict(self, images, batch=256):
        """images float [N, 3, 64, 64] in [-1, 1] -> (emoji ids [N], colour ids [N], features [N, 128]) numpy."""
        out_e, out_c, out_f = [], [], []
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(self.device, torch.float32)
            logits_e, logits_c, f = self.model(x)
            out_e.append(logits_e.argmax(1).cpu())
            out_c.append(logits_c.argmax(1).cpu())
            out_f.append(f.cpu())
        return torch.cat(out_e).numpy(), torch.cat(out_c).numpy(), torch.cat(out_f).double().numpy()

    def score(self, images, emoji, colour, real_images=None):
        """Metrics of generated images [N, 3, 64, 64] for prompts (emoji [N], colour [N]). real_images: the real
        composites of the same pairs, for FD (omitted: no FD)."""
        pred_e, pred_c, feats = self.predict(images)
        emoji, colour = np.asarray(emoji), np.asarray(colour)
        right_e, right_c = pred_e == emoji, pred_c == colour
        result = {"n": int(len(emoji)), "prompt_acc": float((right_e & right_c).mean()),
                  "emoji_acc": float(right_e.mean()), "colour_acc": float(right_c.mean())}
        if real_images is not None:
            result["fd"] = frechet_distance(feats, self.predict(real_images)[2])
        return result


def main():
    parser = argparse.ArgumentParser(description="Score PNG images against their prompts with the emoji classifier.")
    parser.add_argument("--data", default="data/emoji64.npz")
    parser.add_argument("--prompts", required=True, help="JSON list of {file, emoji, colour}")
    parser.add_argument("--images", required=True, help="folder holding the PNG files")
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    args = parser.parse_args()
    import pngio
    from emoji_data import EmojiData
    entries = json.load(open(args.prompts))
    images = []
    for e in entries:
        rgba = pngio.read_png_rgba(os.path.join(args.images, e["file"]))
        if rgba.shape[:2] != (64, 64):
            raise ValueError(f"{e['file']}: expected a 64x64 image, got {rgba.shape[1]}x{rgba.shape[0]}")
        images.append(rgba[..., :3])
    images = torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    emoji = np.array([e["emoji"] for e in entries])
    colour = np.array([e["colour"] for e in entries])
    data = EmojiData(args.data, torch.device("cpu"))
    real = data.images(emoji, colour, np.zeros_like(emoji))
    print(json.dumps(Scorer(args.classifier).score(images, emoji, colour, real), indent=2))


if __name__ == "__main__":
    main()
