"""Assemble a weights store (store.py format) from artefacts of several GPU runs.

Used once, after run B's last two shards (its text encoder and the end of its ReLU teacher) did not come back
from the GPU machine (a run returns at most 64 MB; see docs/TRAINING.md, "What happened"). It takes the VAE and
the text encoder from one store, UNets from another store's complete artefacts, and UNets from EMA files
extracted on the GPU machine (`<name>-ema-<i>.safetensors`, diffusers keys), with configs from that run's
manifest, and writes one store that evaluate.py, export.py and text-encoder realignment can read.

    /usr/bin/python3 tools/train/assemble_store.py --base runs/a --manifest-from runs/b \
        --unets teacher --ema runs/b/student_8 runs/b/teacher_relu --out runs/mix
"""
import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import st  # noqa: E402
from store import Artefact, Store, build_module, config_from_dict  # noqa: E402


def read_manifest_and_tensors(folder):
    """Manifest of shard 1 and whatever tensors the shards present in `folder` hold (some may be missing)."""
    paths = sorted(glob.glob(os.path.join(folder, "weights-g*-of-*.safetensors")))
    tensors, manifest = {}, None
    for path in paths:
        part, meta = st.load(path)
        tensors.update(part)
        if "manifest" in meta:
            manifest = json.loads(meta["manifest"])
    if manifest is None:
        raise SystemExit(f"{folder}: no shard with a manifest")
    return manifest, tensors


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="complete store giving vae and text_encoder")
    p.add_argument("--manifest-from", required=True, help="store folder (possibly incomplete) with the UNets' configs")
    p.add_argument("--unets", nargs="*", default=[], help="UNet artefacts complete in --manifest-from's shards")
    p.add_argument("--ema", nargs="*", default=[], help="paths without suffix: PATH-ema-0.safetensors, PATH-ema-1...")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    base = Store.load(a.base)
    out = Store()
    for name in ("vae", "text_encoder"):
        out.put(base[name])
    manifest, tensors = read_manifest_and_tensors(a.manifest_from)
    for name in a.unets:
        entry = manifest["artefacts"][name]
        prefix = name + "/"
        state = {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        module = build_module("unet", config_from_dict("unet", entry["config"]))
        module.load_state_dict(state, strict=True)
        out.put(Artefact(name, "unet", module.config if hasattr(module, "config") else config_from_dict("unet", entry["config"]), module, entry["progress"]))
    for stem in a.ema:
        name = os.path.basename(stem)
        entry = manifest["artefacts"][name]
        state = {}
        for path in sorted(glob.glob(stem + "-ema-*.safetensors")):
            part, _ = st.load(path)
            state.update({k: v.float() for k, v in part.items()})
        config = config_from_dict("unet", entry["config"])
        module = build_module("unet", config)
        module.load_state_dict(state, strict=True)
        out.put(Artefact(name, "unet", config, module, entry["progress"]))
    out.latest_student = None
    paths, names = out.save(a.out)
    print(f"wrote {len(paths)} shards to {a.out}: {', '.join(names)}")


if __name__ == "__main__":
    main()
