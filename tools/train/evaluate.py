"""Evaluation of the trained variants: generation of the held-out prompt set with fixed seeds, scored by the
emoji classifier; a markdown table and a PNG grid.

  report   render the table from the eval records of one or more log.jsonl files (the GPU runs' logs):
             /usr/bin/python3 tools/train/evaluate.py report runs/a/log.jsonl runs/b/log.jsonl > report.md
  run      measure every UNet in a weights folder (a GPU run's --out) here or on a GPU; writes log.jsonl,
           samples.png and report.md into --out:
             /usr/bin/python3 tools/train/evaluate.py run --weights runs/c --out runs/c-eval [--cfg 2,3,5]
  prompts  write the held-out prompt list with seeds (prompts.json), for generating the same images with the
           C# engine and scoring them with tools/eval/score.py

Variants: teacher (softmax attention) and teacher_relu at 50 and 8 steps with CFG (two UNet calls per step),
students at their distilled step count with the guidance embedding (one call per step). Seeds: image i of a
set uses torch.manual_seed(seed_i) CPU noise of shape [1, 4, 16, 16] (the engine's "cpu" RNG reproduces it).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401

SETS = (("heldout_pairs", "held-out (emoji, colour) pairs"), ("seen_pairs", "training pairs"),
        ("heldout_emoji", "held-out emoji"))


def read_records(paths):
    """Eval records keyed by (variant, steps, cfg); later files and lines win."""
    records = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if r.get("stage") == "eval":
                    records[(r["variant"], r["steps"], r["cfg"])] = r
    return records


def _order(key):
    variant, steps, cfg = key
    rank = {"teacher": 0, "teacher_relu": 1}.get(variant, 2)
    return rank, -steps, cfg


def render_report(records):
    lines = ["| variant | attention | steps | cfg | UNet calls | prompt acc | emoji acc | colour acc | FD | "
             "prompt acc (training pairs) | colour acc (held-out emoji) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in sorted(records, key=_order):
        r = records[key]
        hp, seen, he = r.get("heldout_pairs", {}), r.get("seen_pairs", {}), r.get("heldout_emoji", {})
        calls = r["steps"] * (1 if r.get("guidance_embedding") or r["cfg"] == 1.0 else 2)
        fmt = lambda d, k, digits=3: f"{d[k]:.{digits}f}" if k in d else "-"  # noqa: E731
        lines.append(f"| {r['variant']} | {r.get('attention', '?')} | {r['steps']} | {r['cfg']:g} | {calls} | "
                     f"{fmt(hp, 'prompt_acc')} | {fmt(hp, 'emoji_acc')} | {fmt(hp, 'colour_acc')} | "
                     f"{fmt(hp, 'fd', 2)} | {fmt(seen, 'prompt_acc')} | {fmt(he, 'colour_acc')} |")
    n = next(iter(records.values()), {})
    counts = ", ".join(f"{label}: {n[s]['n']}" for s, label in SETS if s in n)
    lines.append("")
    lines.append(f"Images per set: {counts}. Prompt acc = classifier finds both the emoji and the background "
                 "colour; FD = Frechet distance of the classifier's 128-d features, generated vs real images of "
                 "the held-out pairs (lower is better). Prompts: \"<name> on a <colour> background\".")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_report = sub.add_parser("report")
    p_report.add_argument("logs", nargs="+")
    p_run = sub.add_parser("run")
    p_run.add_argument("--data", default="data/emoji64.npz")
    p_run.add_argument("--weights", required=True, help="folder with weight shards (a GPU run's --out)")
    p_run.add_argument("--out", required=True)
    p_run.add_argument("--cfg", default="3")
    p_run.add_argument("--device", default="auto")
    p_run.add_argument("--budget-s", type=float, default=3600)
    p_run.add_argument("--tiny", action="store_true", help="8 emoji, few prompts (smoke test)")
    p_run.add_argument("--classifier", default=None, help="default: the weights folder's, else tools/eval's")
    p_run.add_argument("--only", default=None,
                       help="measure just these UNet:steps pairs, e.g. student_8:8,teacher_relu:4 (default: all variants)")
    p_prompts = sub.add_parser("prompts")
    p_prompts.add_argument("--data", default="data/emoji64.npz")
    p_prompts.add_argument("--out", default="prompts.json")
    args = parser.parse_args()

    if args.command == "report":
        sys.stdout.write(render_report(read_records(args.logs)))
        return
    import torch
    import stages
    from common import JsonLog, pick_device
    from emoji_data import EmojiData
    from store import Store
    if args.command == "prompts":
        data = EmojiData(args.data, torch.device("cpu"))
        ctx = stages.Context(data, torch.device("cpu"), Store(), None, None, None)
        entries = []
        for name, emoji, colour, seeds in stages.eval_sets(ctx):
            for e, c, s, text in zip(emoji, colour, seeds, data.eval_texts(emoji, colour)):
                entries.append({"set": name, "file": f"{name}-{len(entries):04d}.png", "emoji": int(e),
                                "colour": int(c), "seed": int(s), "prompt": text})
        with open(args.out, "w") as f:
            json.dump(entries, f, indent=1)
        print(f"wrote {len(entries)} prompts to {args.out}")
        return
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    data = EmojiData(args.data, device, limit=8 if args.tiny else None)
    store = Store.load(args.weights, device)
    if not store.artefacts:
        raise SystemExit(f"{args.weights}: no weight shards found")
    log_path = os.path.join(args.out, "log.jsonl")
    ctx = stages.Context(data, device, store, args.out, None, JsonLog(log_path), tiny=args.tiny,
                         resume_from=args.weights)
    ctx.classifier = args.classifier
    only = None if args.only is None else [(v.split(":")[0], int(v.split(":")[1])) for v in args.only.split(",")]
    stages.stage_eval(ctx, args.budget_s, tuple(float(w) for w in args.cfg.split(",")), force=True, save=False, only=only)
    report = render_report(read_records([log_path]))
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
