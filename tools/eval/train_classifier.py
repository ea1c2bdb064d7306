"""Trains the EmojiClassifier on composited emoji (all 1906 x 12 pairs, held-out ones included: it is the
judge, not the generator) and writes it as fp16 safetensors.

Augmentation, so that imperfect generated images are still judged by content: the composition augmentation
(35% of samples), background RGB jitter (+-0.06), a 3x3 blur on 30% of samples, Gaussian noise (sigma up to
0.1), shifts of up to 3 pixels.

  /usr/bin/python3 tools/eval/train_classifier.py --data data/emoji64.npz --out tools/eval/emoji_classifier.safetensors
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import common  # noqa: E402,F401  (sets the import paths)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import captions  # noqa: E402
from classifier import EmojiClassifier, save_classifier  # noqa: E402
from common import Budget, JsonLog, autocast, log, pick_device, scheduled_lr, seed_everything  # noqa: E402
from emoji_data import EmojiData  # noqa: E402


def augmented_batch(data, batch, rng, device):
    emoji = rng.randint(0, data.n, batch)
    colour = rng.randint(0, len(captions.COLOURS), batch)
    comp = np.where(rng.random_sample(batch) < 0.35, rng.randint(1, len(captions.COMPOSITIONS), batch), 0)
    rgb = torch.as_tensor(captions.COLOUR_RGB[colour] / 255.0, dtype=torch.float32)
    background = (rgb + torch.as_tensor(rng.uniform(-0.06, 0.06, (batch, 3)), dtype=torch.float32)).clamp(0, 1)
    index = [torch.as_tensor(a, dtype=torch.long, device=device) for a in (emoji, colour, comp)]
    images = data.compositor(*index, background=background.to(device))         # [B, 3, 64, 64]
    blur = torch.as_tensor(rng.random_sample(batch) < 0.3, device=device)[:, None, None, None]
    images = torch.where(blur, F.avg_pool2d(images, 3, 1, 1, count_include_pad=False), images)
    sigma = torch.as_tensor(rng.uniform(0, 0.1, batch), dtype=torch.float32, device=device)[:, None, None, None]
    images = images + sigma * torch.randn_like(images)
    dx, dy = rng.randint(-3, 4, 2)
    images = torch.roll(images, shifts=(int(dy), int(dx)), dims=(2, 3))
    return images, index[0], index[1]


@torch.no_grad()
def accuracy(model, data, device, emoji, colour, comp):
    index = [torch.as_tensor(a, dtype=torch.long, device=device) for a in (emoji, colour, comp)]
    hits_e = hits_c = 0
    for i in range(0, len(emoji), 256):
        sl = slice(i, i + 256)
        logits_e, logits_c, _ = model(data.compositor(index[0][sl], index[1][sl], index[2][sl]))
        hits_e += (logits_e.argmax(1) == index[0][sl]).sum().item()
        hits_c += (logits_c.argmax(1) == index[1][sl]).sum().item()
    return hits_e / len(emoji), hits_c / len(emoji)


def train(data, device, steps, batch, seconds, seed, lr, jsonlog):
    rng = seed_everything(seed)
    model = EmojiClassifier(data.n).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    budget = Budget(seconds)
    step = 0
    for step in range(steps):
        if budget.over():
            log(f"classifier: time budget reached at step {step}")
            break
        fraction = max(step / steps, budget.elapsed() / seconds)  # whichever runs out first: steps or time
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(step, fraction, lr, warmup=100, floor=0.02)
        images, emoji, colour = augmented_batch(data, batch, rng, device)
        with autocast(device):
            logits_e, logits_c, _ = model(images)
        loss = F.cross_entropy(logits_e.float(), emoji, label_smoothing=0.05) + F.cross_entropy(logits_c.float(), colour)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"classifier step {step}/{steps} loss {loss.item():.4f}")
            jsonlog.write(stage="classifier", step=step, loss=round(loss.item(), 5))
    model.eval()
    return model, step + 1


def main():
    parser = argparse.ArgumentParser(description="Train the emoji/colour classifier used for evaluation.")
    parser.add_argument("--data", default="data/emoji64.npz")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "emoji_classifier.safetensors"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N emoji (smoke tests)")
    parser.add_argument("--log", default=None, help="JSON-lines log (default: next to --out)")
    args = parser.parse_args()
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    data = EmojiData(args.data, device, limit=args.limit)
    jsonlog = JsonLog(args.log or os.path.splitext(args.out)[0] + ".log.jsonl")
    model, steps = train(data, device, args.steps, args.batch, args.seconds, args.seed, args.lr, jsonlog)
    emoji, colour = np.meshgrid(np.arange(data.n), np.arange(len(captions.COLOURS)), indexing="ij")
    emoji, colour = emoji.ravel(), colour.ravel()
    acc_plain = accuracy(model, data, device, emoji, colour, np.zeros_like(emoji))
    comp = np.random.RandomState(1).randint(1, len(captions.COMPOSITIONS), len(emoji))
    acc_comp = accuracy(model, data, device, emoji, colour, comp)
    log(f"classifier: accuracy emoji/colour plain {acc_plain[0]:.4f}/{acc_plain[1]:.4f}, "
        f"composed {acc_comp[0]:.4f}/{acc_comp[1]:.4f}")
    jsonlog.write(stage="classifier", steps=steps, acc_emoji=acc_plain[0], acc_colour=acc_plain[1],
                  acc_emoji_composed=acc_comp[0], acc_colour_composed=acc_comp[1])
    save_classifier(model.cpu(), args.out, {"steps": steps, "seed": args.seed, "batch": args.batch,
                                            "acc_emoji": f"{acc_plain[0]:.4f}", "acc_colour": f"{acc_plain[1]:.4f}",
                                            "acc_emoji_composed": f"{acc_comp[0]:.4f}"})
    log(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
