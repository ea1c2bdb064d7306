"""CLIP BPE tokenizer: a minimal port of openai/CLIP simple_tokenizer.py on the standard library.

Differences from the original, none of which matter for this project's captions (lower-case ASCII words,
commas): no ftfy text repair, and `re` instead of the `regex` module, so the letter class is `[^\\W\\d_]`
(Unicode letters) and the number class is `\\d` (decimal digits; the original's `\\p{N}` also takes
superscripts and fractions). prepare_emoji.py checks that captions assembled from pieces equal this
tokenizer's output on the whole caption text.

Ids follow the original: 256 byte tokens, 256 byte tokens + '</w>', 48894 merges, then
<|startoftext|> = 49406 and <|endoftext|> = 49407; 49408 in all. Sequences are 77 long, padded with
<|endoftext|> as Stable Diffusion 1.x's CLIPTokenizer does.
"""
import gzip
import html
import os
import re

BOS = 49406
EOS = 49407
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408

_PATTERN = re.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""",
    re.IGNORECASE)


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def default_vocab_path():
    """The BPE merges file: $CLIP_BPE_VOCAB, else the engine's embedded copy, else the workplace's shared copy."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    candidates = [os.environ.get("CLIP_BPE_VOCAB", ""),
                  os.path.join(root, "src", "DiffusionSharp", "Resources", "clip", "bpe_simple_vocab_16e6.txt.gz"),
                  os.path.join(root, "..", "shared", "clip", "bpe_simple_vocab_16e6.txt.gz"),
                  "/work/shared/clip/bpe_simple_vocab_16e6.txt.gz"]
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    raise FileNotFoundError("bpe_simple_vocab_16e6.txt.gz not found: set CLIP_BPE_VOCAB to its path")


class ClipTokenizer:
    def __init__(self, vocab_path=None):
        path = vocab_path or default_vocab_path()
        merges = gzip.open(path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
        self.byte_encoder = _bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab.extend("".join(m) for m in merges)
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.decoder = {i: v for v, i in self.encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        if len(self.encoder) != VOCAB_SIZE:
            raise ValueError(f"{path}: vocabulary has {len(self.encoder)} entries, expected {VOCAB_SIZE}")

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text):
        """Token ids of `text` without BOS/EOS."""
        text = re.sub(r"\s+", " ", html.unescape(html.unescape(text))).strip().lower()
        ids = []
        for token in _PATTERN.findall(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace").replace("</w>", " ").strip()

    def __call__(self, text):
        """[77] ids: BOS, the text (truncated to 75), EOS, EOS padding."""
        ids = [BOS] + self.encode(text)[:CONTEXT_LENGTH - 2] + [EOS]
        return ids + [EOS] * (CONTEXT_LENGTH - len(ids))
