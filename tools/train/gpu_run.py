"""The one driver of the GPU training runs: runs the listed stages within a time budget and leaves the results in
--out as at most 8 files of at most 16 MB (weight shards, log.jsonl, samples.png; emoji_classifier.safetensors
when the classifier stage runs).

  PYTHONUNBUFFERED=1 python3 tools/train/gpu_run.py --data data/emoji64.npz --out $OUT --work /tmp/run \\
      --budget-s 520 --stages vae,teacher [--resume-from DIR]

--stages is a comma list of classifier, vae, teacher, relu, distill, eval; "name:SECONDS" fixes a stage's share,
the others split what is left of --budget-s by fixed weights. --resume-from DIR continues from a previous run's
--out (its weight shards and log). --tiny shrinks data, models and batches so that the whole driver runs on a
CPU in a few minutes. On SIGTERM or an error the driver saves what it has before exiting (non-zero on error).
"""
import argparse
import os
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import torch  # noqa: E402

import stages  # noqa: E402
from common import JsonLog, log, pick_device  # noqa: E402
from emoji_data import EmojiData  # noqa: E402
from store import Store  # noqa: E402

STAGES = ("classifier", "vae", "teacher", "relu", "distill", "eval")
WEIGHTS = {"classifier": 0.6, "vae": 2.0, "teacher": 6.0, "relu": 1.2, "distill": 4.0, "eval": 0.8}
RESERVE_S = 15.0  # kept back for the final save
LIMITS = (8, 16 * 1024 * 1024)  # files, bytes per file that a GPU run may return


def parse_stages(text, budget):
    plan, fixed = [], 0.0
    for item in text.split(","):
        name, _, seconds = item.strip().partition(":")
        if name not in STAGES:
            raise SystemExit(f"--stages: unknown stage {name!r} (known: {', '.join(STAGES)})")
        plan.append([name, float(seconds) if seconds else None])
        fixed += float(seconds) if seconds else 0.0
    free = max(0.0, budget - RESERVE_S - fixed)
    weight = sum(WEIGHTS[n] for n, s in plan if s is None)
    for entry in plan:
        if entry[1] is None:
            entry[1] = free * WEIGHTS[entry[0]] / weight
    return plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/emoji64.npz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/diffusionsharp-run")
    parser.add_argument("--budget-s", type=float, required=True)
    parser.add_argument("--stages", required=True)
    parser.add_argument("--resume-from", default=None)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=None, help="UNet batch (default 512; --tiny 16)")
    parser.add_argument("--vae-batch", type=int, default=None, help="VAE batch (default 128; --tiny 16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the trained UNet (torch 2.x)")
    parser.add_argument("--checkpoint-s", type=float, default=None, help="save interval (default 120; --tiny 30)")
    parser.add_argument("--distill-target", type=int, default=8)
    parser.add_argument("--distill-from", type=int, default=32, help="teacher steps of the first round")
    parser.add_argument("--eval-cfg", default="3", help="comma list of guidance scales to evaluate")
    args = parser.parse_args()

    deadline = time.time() + args.budget_s
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    plan = parse_stages(args.stages, args.budget_s)
    log(f"torch {torch.__version__} on {device}" +
        (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "") +
        f"; plan: {', '.join(f'{n} {s:.0f}s' for n, s in plan)}")

    source = args.resume_from or args.out
    if args.resume_from and os.path.abspath(args.resume_from) != os.path.abspath(args.out):
        for name in ("log.jsonl",):
            src = os.path.join(args.resume_from, name)
            if os.path.isfile(src) and not os.path.isfile(os.path.join(args.out, name)):
                shutil.copyfile(src, os.path.join(args.out, name))
    jsonlog = JsonLog(os.path.join(args.out, "log.jsonl"))
    data = EmojiData(args.data, device, limit=8 if args.tiny else None)
    store = Store.load(source, device)
    resumed = ", ".join(f"{k} ({a.progress.get('steps', 0)} steps)" for k, a in store.artefacts.items())
    log(f"data: {data.n} emoji, {len(data.train_pairs)} training pairs; resumed artefacts: {resumed or 'none'}")
    ctx = stages.Context(data, device, store, args.out, args.work, jsonlog, tiny=args.tiny, seed=args.seed,
                         compile=args.compile, batch=args.batch or (16 if args.tiny else 512),
                         vae_batch=args.vae_batch or (16 if args.tiny else 128),
                         checkpoint_s=args.checkpoint_s or (30.0 if args.tiny else 120.0),
                         resume_from=args.resume_from)
    jsonlog.write(stage="run", torch=torch.__version__, device=str(device), plan=plan, argv=sys.argv[1:])

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_sigterm)

    failed = False
    cfgs = tuple(float(w) for w in args.eval_cfg.split(","))
    try:
        for name, seconds in plan:
            seconds = min(seconds, deadline - time.time() - RESERVE_S)
            if seconds < 1:
                log(f"{name}: no time left, skipped")
                jsonlog.write(stage=name, skipped="no time left")
                continue
            log(f"=== stage {name} ({seconds:.0f}s)")
            if name == "classifier":
                stages.stage_classifier(ctx, seconds)
            elif name == "vae":
                stages.stage_vae(ctx, seconds)
            elif name == "teacher":
                stages.stage_teacher(ctx, seconds)
            elif name == "relu":
                stages.stage_relu(ctx, seconds)
            elif name == "distill":
                stages.stage_distill(ctx, seconds, args.distill_target, args.distill_from)
            elif name == "eval":
                stages.stage_eval(ctx, seconds, cfgs)
    except BaseException as error:  # noqa: BLE001 -- save whatever exists, then report
        failed = True
        log(f"FAILED: {type(error).__name__}: {error}")
        traceback.print_exc()
        jsonlog.write(stage="error", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    try:
        if store.artefacts:
            ctx.save()
    except BaseException as error:  # noqa: BLE001
        failed = True
        log(f"FAILED to save: {error}")
        traceback.print_exc()
    files = sorted(os.listdir(args.out))
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in files}
    log("out: " + ", ".join(f"{f} {s / 1e6:.1f} MB" for f, s in sizes.items()))
    if len(files) > LIMITS[0] or any(s > LIMITS[1] for s in sizes.values()):
        log(f"WARNING: --out holds {len(files)} files (limit {LIMITS[0]}) or a file over {LIMITS[1]} bytes")
    log("done" + (" with errors" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
