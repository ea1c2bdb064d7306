"""Builds data/emoji64.npz from the npm tarballs of emoji-datasource-google@16.0.0 and emojilib@4.0.3.

Run through prepare_emoji.sh (which fetches the tarballs with `npm pack`). Deterministic: the same tarballs give
a byte-identical npz. Never run in CI.

Contents (no pickled objects; strings are fixed-width unicode arrays):
  image [N, 64, 64, 4] uint8 RGBA (straight alpha), N = 1906 base emoji (no "Component", no skin tones)
  unified, unicode_name, name, short_name, keywords ('|'-joined), category, subcategory  [N] str
  heldout_emoji [10] int32, heldout_pairs [240, 2] int32 (emoji, colour)  -- see captions.split_heldout
  piece_text [P] str, piece_tokens [P, Lmax] int32, piece_len [P] int32  -- CLIP BPE ids of caption pieces
  colour_rgb [12, 3] uint8, colour_name [12] str
"""
import argparse
import hashlib
import io
import json
import os
import sys
import tarfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import captions  # noqa: E402
import pngio  # noqa: E402
from clip_tokenizer import ClipTokenizer  # noqa: E402

SOURCES = {
    "emoji-datasource-google-16.0.0.tgz": "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
    "emojilib-4.0.3.tgz": "7f9a6b43cff31d18985b7d65d11faba5bd971cbcc60020cf6d09322fbaaaf303",
}
NOTO_LICENCE_LINE = ("* Android/Google/Noto images, are available under the "
                     "[Apache License 2.0](https://github.com/googlei18n/noto-emoji/blob/master/LICENSE).")


def read_tarball(path):
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    expected = SOURCES[os.path.basename(path)]
    if digest != expected:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned {expected}")
    files = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    return files


def verify_licences(google, emojilib):
    for name, files in (("emoji-datasource-google", google), ("emojilib", emojilib)):
        meta = json.loads(files["package/package.json"])
        if meta.get("license") != "MIT" or not files["package/LICENSE"].startswith(b"The MIT License"):
            raise ValueError(f"{name}: expected an MIT package licence, found {meta.get('license')!r}")
    readme = google["package/README.md"].decode("utf-8")
    if NOTO_LICENCE_LINE not in readme:
        raise ValueError("emoji-datasource-google README no longer states that the Noto images are Apache-2.0")


def to_chars(unified):
    return "".join(chr(int(cp, 16)) for cp in unified.split("-"))


def build(pkg_dir, out_path, vocab=None):
    google = read_tarball(os.path.join(pkg_dir, "emoji-datasource-google-16.0.0.tgz"))
    emojilib = read_tarball(os.path.join(pkg_dir, "emojilib-4.0.3.tgz"))
    verify_licences(google, emojilib)
    table = json.loads(google["package/emoji.json"])
    library = json.loads(emojilib["package/dist/emoji-en-US.json"])
    base = sorted((e for e in table if e["category"] != "Component"), key=lambda e: e["sort_order"])

    images, rows = [], []
    for e in base:
        if not e.get("has_img_google"):
            raise ValueError(f"{e['unified']}: no Google image")
        images.append(_decode(google[f"package/img/google/64/{e['image']}"], e["image"]))
        keywords = library.get(to_chars(e["unified"])) or library.get(to_chars(e["non_qualified"] or "0"), [])
        name = captions.emoji_name(keywords, e["name"], e["short_name"])
        kws = []
        for k in keywords[1:]:
            k = captions.clean_phrase(k)
            if k is not None and k != name and k not in kws:
                kws.append(k)
        short = captions.clean_phrase(e["short_name"]) or ""
        rows.append(dict(unified=e["unified"], unicode_name=e["name"], name=name,
                         short_name="" if short == name else short, short_name_raw=e["short_name"], keywords="|".join(kws),
                         category=e["category"], subcategory=e["subcategory"]))
    names = [r["name"] for r in rows]
    for r in rows:  # emojilib names a few gender-neutral emoji like their male forms: use the short name
        short = captions.clean_phrase(r["short_name_raw"])
        if names.count(r["name"]) > 1 and short and short != r["name"]:
            r["name"], r["short_name"] = short, ""
    for r in rows:
        del r["short_name_raw"]
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate caption names: {dupes}")

    pieces = captions.caption_pieces(names, [r["keywords"] for r in rows], [r["short_name"] for r in rows],
                                     [r["category"] for r in rows], [r["subcategory"] for r in rows])
    tokenizer = ClipTokenizer(vocab)
    encoded = [tokenizer.encode(p) for p in pieces]
    for p, ids in zip(pieces, encoded):
        if not ids or any(i >= 49406 for i in ids):
            raise ValueError(f"caption piece {p!r} tokenizes to {ids}")
    lmax = max(len(ids) for ids in encoded)
    piece_tokens = np.zeros((len(pieces), lmax), dtype=np.int32)
    for i, ids in enumerate(encoded):
        piece_tokens[i, :len(ids)] = ids
    heldout_emoji, heldout_pairs = captions.split_heldout(names, [r["subcategory"] for r in rows])

    arrays = {key: np.array([r[key] for r in rows]) for key in rows[0]}
    arrays.update(
        image=np.stack(images), heldout_emoji=heldout_emoji, heldout_pairs=heldout_pairs,
        piece_text=np.array(pieces), piece_tokens=piece_tokens,
        piece_len=np.array([len(ids) for ids in encoded], dtype=np.int32),
        colour_rgb=captions.COLOUR_RGB, colour_name=np.array(captions.COLOUR_NAMES))
    check_assembly(arrays, tokenizer)
    _save_deterministic(out_path, arrays)
    return arrays


def _decode(png, name):
    image = pngio.decode_png_rgba(png, name)
    if image.shape != (64, 64, 4):
        raise ValueError(f"{name}: expected 64x64, got {image.shape}")
    return image


def check_assembly(arrays, tokenizer, samples=4000):
    """Captions assembled from pieces must equal tokenizing the caption text directly."""
    bank = captions.CaptionBank(arrays)
    rng = np.random.RandomState(0)
    n = len(arrays["name"])
    emoji = rng.randint(0, n, samples)
    colour = rng.randint(0, len(captions.COLOURS), samples)
    composition = np.where(rng.random_sample(samples) < 0.3, rng.randint(0, len(captions.COMPOSITIONS), samples), 0)
    pieces = bank.sample_pieces(emoji, colour, composition, rng)
    tokens = bank.tokens(pieces)
    for text, ids in zip(bank.text(pieces), tokens):
        if tokenizer(text) != ids.tolist():
            raise ValueError(f"assembled tokens differ from the tokenizer for {text!r}")


def _save_deterministic(path, arrays):
    """np.savez_compressed with fixed zip timestamps, so reruns are byte-identical."""
    import zipfile
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pkg", default="data/pkg", help="folder holding the two npm tarballs")
    parser.add_argument("--out", default="data/emoji64.npz")
    parser.add_argument("--vocab", default=None, help="bpe_simple_vocab_16e6.txt.gz (default: $CLIP_BPE_VOCAB or shared/clip)")
    args = parser.parse_args()
    arrays = build(args.pkg, args.out, args.vocab)
    n, held = len(arrays["name"]), arrays["heldout_pairs"]
    print(f"{args.out}: {n} emoji, {len(arrays['piece_text'])} caption pieces, {len(held)} held-out pairs, "
          f"{len(arrays['heldout_emoji'])} held-out emoji, {os.path.getsize(args.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
