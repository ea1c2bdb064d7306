"""The pipeline's artefacts (trained networks) and their hand-over between GPU runs.

An artefact is one network: a kind ("vae", "text_encoder", "unet"), its sdref config, fp32 weights in memory and
a small progress record (steps, seconds, done). Between runs they travel as fp16 weights packed into
safetensors shards, because a run returns at most 8 files of at most 16 MB each:

  weights-g<generation>-<i>-of-<n>.safetensors   keys "<artefact>/<state-dict key>", fp16; shard 1's metadata
                                                 holds the JSON manifest (configs, progress, scaling factor)
  log.jsonl, samples.png                         written by the stages

A new generation is written completely before the previous one is deleted, so a run killed while saving still
leaves a complete older generation. At most MAX_UNETS UNets are kept (6 shards): the latest student, the
teacher of its round while that round is unfinished, the 8-step student (the shipping candidate), the ReLU
teacher, the softmax teacher, then other students, in that order. Each variant is evaluated in the stage that makes it, so dropping one loses no measurement.

Resumable full-precision state (fp32 weights, EMA, optimizer) of the stage in progress goes under --work with
torch.save; it only helps when the same machine runs again.
"""
import glob
import json
import os
import re

import torch

import st

SHARD_BYTES = 15_000_000
# A run returns at most 64 MB in all: vae (4 MB) + text encoder (10 MB) + 2 UNets (22 MB each) = 58 MB.
# With 3 UNets (80 MB) the last shards were left on the machine once (docs/TRAINING.md, "Lost shards").
MAX_UNETS = 2
KINDS = ("vae", "text_encoder", "unet")


class Artefact:
    def __init__(self, name, kind, config, module, progress=None):
        if kind not in KINDS:
            raise ValueError(f"artefact {name}: unknown kind {kind!r}")
        self.name, self.kind, self.config, self.module = name, kind, config, module
        self.progress = dict(progress or {})


def build_module(kind, config):
    import sdref
    cls = {"vae": sdref.AutoencoderKL, "text_encoder": sdref.ClipTextModel, "unet": sdref.UNet2DConditionModel}[kind]
    return cls(config)


def config_from_dict(kind, data):
    import sdref
    cls = {"vae": sdref.AutoencoderKLConfig, "text_encoder": sdref.ClipTextConfig,
           "unet": sdref.UNet2DConditionConfig}[kind]
    return cls.from_dict(data, source=f"{kind} config in the manifest")


def unet_priority(name):
    """Lower keeps longer (after the latest student): the 8-step student, the ReLU teacher, the softmax teacher,
    then other students."""
    return {"student_8": 0, "teacher_relu": 1, "teacher": 2}.get(name, 3)


class Store:
    """The artefacts of one pipeline run, in memory, with save/load of the fp16 pack."""

    def __init__(self):
        self.artefacts = {}
        self.generation = 0
        self.latest_student = None

    def __contains__(self, name):
        return name in self.artefacts

    def __getitem__(self, name):
        return self.artefacts[name]

    def put(self, artefact):
        self.artefacts[artefact.name] = artefact
        if artefact.name.startswith("student_"):
            self.latest_student = artefact.name

    def drop(self, name):
        self.artefacts.pop(name, None)

    def _kept(self):
        latest = self.artefacts.get(self.latest_student)
        unfinished_teacher = latest.progress.get("from") if latest is not None and not latest.progress.get("done") else None

        def rank(n):  # the latest student, the teacher of its unfinished round, then by unet_priority
            return 0 if n == self.latest_student else 1 if n == unfinished_teacher else unet_priority(n) + 2
        unets = sorted((a.name for a in self.artefacts.values() if a.kind == "unet"), key=rank)
        dropped = set(unets[MAX_UNETS:])
        return [a for a in self.artefacts.values() if a.name not in dropped]

    def save(self, folder):
        """Write the kept artefacts as a new generation of fp16 shards, then delete older generations.
        Returns (shard paths, names of the artefacts written)."""
        os.makedirs(folder, exist_ok=True)
        kept = self._kept()
        manifest = {"latest_student": self.latest_student, "artefacts": {
            a.name: {"kind": a.kind, "config": a.config.to_dict(), "progress": a.progress} for a in kept}}
        tensors = {}
        for a in kept:
            for key, value in a.module.state_dict().items():
                tensors[f"{a.name}/{key}"] = value.detach().to("cpu", torch.float16 if value.is_floating_point() else value.dtype)
        shards, current, size = [], {}, 0
        for key in sorted(tensors):
            nbytes = tensors[key].numel() * tensors[key].element_size()
            if current and size + nbytes > SHARD_BYTES:
                shards.append(current)
                current, size = {}, 0
            current[key] = tensors[key]
            size += nbytes
        shards.append(current)
        self.generation = max(self.generation, _latest_generation(folder)) + 1
        for i, shard in enumerate(shards):
            meta = {"manifest": json.dumps(manifest)} if i == 0 else {}
            st.save(os.path.join(folder, _shard_name(self.generation, i + 1, len(shards))), shard, meta)
        for path in glob.glob(os.path.join(folder, "weights-g*-of-*.safetensors")):
            if _parse(path)[0] != self.generation:
                os.remove(path)
        return ([os.path.join(folder, _shard_name(self.generation, i + 1, len(shards))) for i in range(len(shards))],
                [a.name for a in kept])

    @classmethod
    def load(cls, folder, device="cpu"):
        """The newest complete generation in `folder` as fp32 modules on `device`; an empty store if none."""
        store = cls()
        found = {}
        for path in glob.glob(os.path.join(folder, "weights-g*-of-*.safetensors")):
            gen, index, total = _parse(path)
            found.setdefault((gen, total), {})[index] = path
        complete = [(gen, total) for (gen, total), files in found.items() if len(files) == total]
        if not complete:
            return store
        gen, total = max(complete)
        tensors, manifest = {}, None
        for index in range(1, total + 1):
            part, meta = st.load(found[(gen, total)][index])
            tensors.update(part)
            if index == 1:
                manifest = json.loads(meta["manifest"])
        store.generation = gen
        for name, entry in manifest["artefacts"].items():
            config = config_from_dict(entry["kind"], entry["config"])
            module = build_module(entry["kind"], config)
            prefix = name + "/"
            state = {k[len(prefix):]: v.float() if v.is_floating_point() else v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(state, strict=True)
            store.put(Artefact(name, entry["kind"], config, module.to(device), entry["progress"]))
        store.latest_student = manifest.get("latest_student")
        return store


def _shard_name(generation, index, total):
    return f"weights-g{generation:04d}-{index:05d}-of-{total:05d}.safetensors"


def _parse(path):
    m = re.fullmatch(r"weights-g(\d+)-(\d+)-of-(\d+)\.safetensors", os.path.basename(path))
    if not m:
        raise ValueError(f"{path}: not a weights shard name")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _latest_generation(folder):
    gens = [_parse(p)[0] for p in glob.glob(os.path.join(folder, "weights-g*-of-*.safetensors"))]
    return max(gens, default=0)


def slim(source, target, keep):
    """Copies the newest generation of `source` into `target` with only the artefacts named in `keep` (to carry
    a smaller resume folder to the next GPU run)."""
    store = Store.load(source)
    missing = [k for k in keep if k not in store]
    if missing:
        raise SystemExit(f"{source}: no artefact {', '.join(missing)} (has {', '.join(sorted(store.artefacts))})")
    for name in list(store.artefacts):
        if name not in keep:
            store.drop(name)
    if store.latest_student not in store.artefacts:
        store.latest_student = max((n for n in store.artefacts if n.startswith("student_")),
                                   key=lambda n: -int(n.split("_")[1]), default=None)
    return store.save(target)


def save_work_state(folder, name, state):
    """Full-precision resumable state of a stage (torch.save, atomic); nothing without a work folder."""
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.pt")
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_work_state(folder, name):
    path = os.path.join(folder, f"{name}.pt") if folder else None
    if path and os.path.isfile(path):
        return torch.load(path, map_location="cpu")
    return None


if __name__ == "__main__":
    import argparse
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common  # noqa: F401  (import paths for sdref)
    parser = argparse.ArgumentParser(description="Weight-shard folders of the GPU runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show the artefacts of a folder")
    p_list.add_argument("folder")
    p_slim = sub.add_parser("slim", help="copy only some artefacts into a new folder")
    p_slim.add_argument("source")
    p_slim.add_argument("target")
    p_slim.add_argument("--keep", required=True, help="comma list, e.g. vae,text_encoder,student_8")
    args = parser.parse_args()
    if args.command == "list":
        loaded = Store.load(args.folder)
        for name, a in sorted(loaded.artefacts.items()):
            print(f"{name:14s} {a.kind:13s} {sum(p.numel() for p in a.module.parameters()) / 1e6:6.2f} M  {a.progress}")
        print(f"latest student: {loaded.latest_student}, generation {loaded.generation}")
    else:
        paths, kept = slim(args.source, args.target, args.keep.split(","))
        print(f"wrote {len(paths)} shard(s) with {', '.join(kept)} to {args.target}")
