"""Caption scheme, colour table, compositions and the held-out split for the emoji data set.

One place defines what the model is taught:
- COLOURS: the 12 named backgrounds and their exact RGB values.
- COMPOSITIONS: the emoji at its native size, or small/large/left/right/top/bottom (a modest augmentation).
- TEMPLATES: how a caption is built from pieces (names, keywords, colour words, fixed phrases).
- held-out split: (emoji, colour) pairs and whole emoji that the generator never sees.

Captions are token-id sequences assembled from pre-tokenized pieces. CLIP's BPE tokenizes each word on its own,
so the ids of "red apple on a blue background" are the ids of "red apple", "on a", "blue", "background" joined;
prepare_emoji.py checks that for every template. This keeps caption sampling vectorized and tokenizer-free at
training time (the GPU box has no CLIP vocabulary file).
"""
import re

import numpy as np

COLOURS = (
    ("white", (255, 255, 255)),
    ("black", (0, 0, 0)),
    ("red", (220, 20, 20)),
    ("orange", (255, 140, 0)),
    ("yellow", (255, 220, 0)),
    ("green", (30, 160, 40)),
    ("blue", (30, 70, 220)),
    ("purple", (130, 40, 180)),
    ("pink", (255, 120, 190)),
    ("brown", (120, 70, 30)),
    ("gray", (128, 128, 128)),
    ("cyan", (0, 200, 220)),
)
COLOUR_NAMES = tuple(name for name, _ in COLOURS)
COLOUR_RGB = np.array([rgb for _, rgb in COLOURS], dtype=np.uint8)  # [12, 3]

# (name, scale, top-left x, top-left y) of the 64x64 emoji in the 64x64 frame; scale 0.5 -> 32x32 by 2x2
# averaging, scale 1.25 -> 80x80 bilinear, cropped to the frame.
COMPOSITIONS = (
    ("none", 1.0, 0, 0),
    ("small", 0.5, 16, 16),
    ("large", 1.25, -8, -8),
    ("left", 0.5, 1, 16),
    ("right", 0.5, 31, 16),
    ("top", 0.5, 16, 1),
    ("bottom", 0.5, 16, 31),
)
COMPOSITION_NAMES = tuple(c[0] for c in COMPOSITIONS)

EMPTY_SHARE = 0.10        # empty captions, for classifier-free guidance
COMPOSITION_SHARE = 0.12  # samples with a non-default composition
KEYWORD_SHARE = 0.12      # an emojilib keyword instead of the name
SHORT_NAME_SHARE = 0.06   # the emoji-datasource short name instead of the name
GREY_SHARE = 0.25         # "grey" instead of "gray"

_CATEGORY_WORDS = {
    "Smileys & Emotion": "smiley", "People & Body": "person", "Animals & Nature": "nature",
    "Food & Drink": "food", "Travel & Places": "travel", "Activities": "activity", "Objects": "object",
    "Symbols": "symbol", "Flags": "flag",
}
_SUBCATEGORY_WORDS = {
    "face": "face", "cat": "face", "monkey": "face", "person": "person", "hand": "hand", "hands": "hand",
    "animal": "animal", "plant": "plant", "food": "food", "drink": "drink", "dishware": "dishware",
    "place": "place", "transport": "vehicle", "country": "flag", "subdivision": "flag", "flag": "flag",
    "heart": "heart", "sport": "sport", "clothing": "clothing", "musical": "instrument", "zodiac": "zodiac sign",
    "arrow": "arrow", "keycap": "keycap", "time": "clock", "money": "money",
}

# Templates: tuples of slots. Lower-case literals are fixed pieces; NAME, ART (a/an before the name),
# CART (a/an before the colour), COLOUR and CATEGORY are filled per sample. Weights are relative.
PLAIN_TEMPLATES = (
    (0.45, ("NAME", "on", "CART", "COLOUR", "background")),
    (0.40, ("ART", "NAME", "on", "CART", "COLOUR", "background")),
    (0.10, ("NAME", ",", "CATEGORY", ",", "COLOUR", "background")),
    (0.05, ("ART", "NAME")),
)
COMPOSITION_TEMPLATES = {
    "small": ("a", "small", "NAME", "on", "CART", "COLOUR", "background"),
    "large": ("a", "large", "NAME", "on", "CART", "COLOUR", "background"),
    "left": ("ART", "NAME", "on the left of", "CART", "COLOUR", "background"),
    "right": ("ART", "NAME", "on the right of", "CART", "COLOUR", "background"),
    "top": ("ART", "NAME", "at the top of", "CART", "COLOUR", "background"),
    "bottom": ("ART", "NAME", "at the bottom of", "CART", "COLOUR", "background"),
}
EVAL_TEMPLATE = ("NAME", "on", "CART", "COLOUR", "background")
MAX_SLOTS = 7
_LITERALS = ("a", "an", "on", ",", "background", "small", "large", "on the left of", "on the right of",
             "at the top of", "at the bottom of", "grey")


def clean_phrase(text):
    """Lower-case words, '_' and '-' as spaces, typographic quotes dropped; None if not plain text."""
    text = text.replace("\u00a0", " ").replace("_", " ").replace("-", " ").replace("\u2019", "'")
    text = re.sub(r"[\u201c\u201d\"]", "", text).lower()
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) < 2 or not re.fullmatch(r"[a-z0-9\u00c0-\u024f' ,.&]+", text) or not re.search(r"[a-z]", text):
        return None
    return text


def emoji_name(emojilib_keywords, unicode_name, short_name):
    """The caption name: emojilib's first keyword (the CLDR short name), else the Unicode name, else the
    emoji-datasource short name ("keycap_star")."""
    if emojilib_keywords and not emojilib_keywords[0].endswith("_"):
        name = clean_phrase(emojilib_keywords[0])
        if name is not None:
            return name
    for candidate in (unicode_name, short_name):
        name = clean_phrase(candidate)
        if name is not None:
            return name
    raise ValueError(f"no usable caption name for emoji {unicode_name!r}")


def category_word(category, subcategory):
    head = subcategory.split("-")[0].split(" ")[0]
    return _SUBCATEGORY_WORDS.get(head, _CATEGORY_WORDS[category])


def article(phrase):
    return "an" if phrase[0] in "aeiou" else "a"


def caption_pieces(names, keywords, short_names, categories, subcategories):
    """Every distinct text piece a caption can contain (prepare_emoji.py tokenizes these)."""
    pieces = set(_LITERALS) | set(COLOUR_NAMES)
    pieces |= set(names)
    for kws in keywords:
        pieces |= {k for k in kws.split("|") if k}
    pieces |= {s for s in short_names if s}
    pieces |= {category_word(c, s) for c, s in zip(categories, subcategories)}
    return sorted(pieces)


def split_heldout(names, subcategories, seed=20261122, pairs=240, whole=10, keep=("red apple",)):
    """Deterministic held-out split.

    Returns (heldout_emoji [whole], heldout_pairs [pairs, 2] of (emoji, colour)). The whole-emoji set is drawn
    from subcategories with at least 8 members (so similar emoji remain in training); the pairs use other
    emoji, one colour each, colours balanced. Emoji named in `keep` are never held out.
    """
    rng = np.random.RandomState(seed)
    n = len(names)
    kept = {i for i, name in enumerate(names) if name in keep}
    sizes = {}
    for s in subcategories:
        sizes[s] = sizes.get(s, 0) + 1
    whole_candidates = [i for i in range(n) if sizes[subcategories[i]] >= 8 and i not in kept]
    heldout_emoji = np.sort(rng.choice(whole_candidates, size=whole, replace=False))
    pair_candidates = [i for i in range(n) if i not in kept and i not in set(heldout_emoji.tolist())]
    pair_emoji = rng.choice(pair_candidates, size=pairs, replace=False)
    colours = np.arange(pairs) % len(COLOURS)
    rng.shuffle(colours)
    order = np.argsort(pair_emoji, kind="stable")
    heldout_pairs = np.stack([pair_emoji[order], colours[order]], axis=1).astype(np.int32)
    return heldout_emoji.astype(np.int32), heldout_pairs


class CaptionBank:
    """Token tables for the caption pieces of one data set (arrays from emoji64.npz)."""

    def __init__(self, data):
        self.piece_text = [str(t) for t in data["piece_text"]]
        self.piece_tokens = np.asarray(data["piece_tokens"], dtype=np.int64)  # [P, Lmax]
        self.piece_len = np.asarray(data["piece_len"], dtype=np.int64)        # [P]
        self.index = {t: i for i, t in enumerate(self.piece_text)}
        self.empty = len(self.piece_text)  # an extra zero-length piece for unused slots
        self.piece_tokens = np.concatenate([self.piece_tokens, np.zeros((1, self.piece_tokens.shape[1]), np.int64)])
        self.piece_len = np.concatenate([self.piece_len, [0]])
        names = [str(t) for t in data["name"]]
        self.name = np.array([self.index[t] for t in names])
        self.name_article = np.array([self.index[article(t)] for t in names])
        self.short = np.array([self.index.get(str(t), self.index[n]) for t, n in zip(data["short_name"], names)])
        self.category = np.array([self.index[category_word(str(c), str(s))]
                                  for c, s in zip(data["category"], data["subcategory"])])
        kw_lists = [[self.index[k] for k in str(kws).split("|") if k] for kws in data["keywords"]]
        self.kw_count = np.array([len(k) for k in kw_lists])
        self.kw_offset = np.concatenate([[0], np.cumsum(self.kw_count)[:-1]])
        self.kw_flat = np.array([i for k in kw_lists for i in k] + [0])
        self.colour = np.array([self.index[c] for c in COLOUR_NAMES])
        self.colour_article = np.array([self.index[article(c)] for c in COLOUR_NAMES])
        self.piece_article = np.array([self.index[article(t)] if t[0].isalpha() else self.index["a"]
                                       for t in self.piece_text] + [self.index["a"]])

    def _fill(self, template, emoji, colour, name, grey):
        """Piece ids [B, MAX_SLOTS] for one template."""
        b = len(emoji)
        out = np.full((b, MAX_SLOTS), self.empty, dtype=np.int64)
        for j, slot in enumerate(template):
            if slot == "NAME":
                out[:, j] = name
            elif slot == "ART":
                out[:, j] = self.piece_article[name]
            elif slot == "CART":
                out[:, j] = self.colour_article[colour]
            elif slot == "COLOUR":
                out[:, j] = np.where(grey & (colour == COLOUR_NAMES.index("gray")), self.index["grey"],
                                     self.colour[colour])
            elif slot == "CATEGORY":
                out[:, j] = self.category[emoji]
            else:
                out[:, j] = self.index[slot]
        return out

    def sample_pieces(self, emoji, colour, composition, rng):
        """Random captions for a batch: piece ids [B, MAX_SLOTS]. emoji, colour, composition: int arrays [B]."""
        b = len(emoji)
        u = rng.random_sample((4, b))
        name = self.name[emoji].copy()
        use_kw = (u[0] < KEYWORD_SHARE) & (self.kw_count[emoji] > 0)
        pick = self.kw_offset[emoji] + np.minimum((u[1] * self.kw_count[emoji]).astype(np.int64),
                                                  np.maximum(self.kw_count[emoji] - 1, 0))
        name = np.where(use_kw, self.kw_flat[pick], name)
        use_short = (u[0] >= KEYWORD_SHARE) & (u[0] < KEYWORD_SHARE + SHORT_NAME_SHARE)
        name = np.where(use_short, self.short[emoji], name)
        grey = u[2] < GREY_SHARE
        pieces = np.full((b, MAX_SLOTS), self.empty, dtype=np.int64)
        weights = np.array([w for w, _ in PLAIN_TEMPLATES])
        plain_choice = np.minimum(np.searchsorted(np.cumsum(weights / weights.sum()), u[3], side="right"),
                                  len(PLAIN_TEMPLATES) - 1)
        for k, (_, template) in enumerate(PLAIN_TEMPLATES):
            rows = np.nonzero((composition == 0) & (plain_choice == k))[0]
            if len(rows):
                pieces[rows] = self._fill(template, emoji[rows], colour[rows], name[rows], grey[rows])
        for m, comp in enumerate(COMPOSITION_NAMES):
            rows = np.nonzero(composition == m)[0]
            if m == 0 or not len(rows):
                continue
            pieces[rows] = self._fill(COMPOSITION_TEMPLATES[comp], emoji[rows], colour[rows], name[rows],
                                      grey[rows])
        return pieces

    def eval_pieces(self, emoji, colour):
        """The evaluation caption "<name> on a <colour> background": piece ids [B, MAX_SLOTS]."""
        emoji, colour = np.asarray(emoji), np.asarray(colour)
        return self._fill(EVAL_TEMPLATE, emoji, colour, self.name[emoji], np.zeros(len(emoji), bool))

    def tokens(self, pieces, drop=None):
        """Token ids [B, 77] (BOS, pieces, EOS, EOS padding); rows where drop is true become the empty caption."""
        b = pieces.shape[0]
        lens = self.piece_len[pieces]                                         # [B, S]
        if drop is not None:
            lens = np.where(drop[:, None], 0, lens)
        starts = 1 + np.cumsum(lens, axis=1) - lens                           # [B, S]
        total = lens.sum(axis=1)
        if total.max(initial=0) > 75:
            raise ValueError(f"caption of {total.max()} tokens exceeds CLIP's 75")
        out = np.full((b, 77), 49407, dtype=np.int64)
        out[:, 0] = 49406
        lmax = self.piece_tokens.shape[1]
        j = np.arange(lmax)
        valid = j[None, None, :] < lens[:, :, None]                           # [B, S, L]
        rows = np.broadcast_to(np.arange(b)[:, None, None], valid.shape)
        cols = starts[:, :, None] + j[None, None, :]
        out[rows[valid], cols[valid]] = self.piece_tokens[pieces][valid]
        return out

    def text(self, pieces):
        """Human-readable captions for piece ids [B, MAX_SLOTS]."""
        texts = []
        for row in pieces:
            words = [self.piece_text[p] for p in row if p != self.empty]
            texts.append(" ".join(words).replace(" ,", ","))
        return texts
