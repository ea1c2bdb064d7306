"""The emoji data set as the training stages see it: the npz from tools/data/prepare_emoji.py, the held-out
split, batch sampling of (emoji, colour, composition) and captions, all without a data loader (the whole set is
a 31 MB uint8 tensor on the device).
"""
import numpy as np
import torch

import captions
from compose import Compositor

CAPTION_KEYS = ("name", "short_name", "keywords", "category", "subcategory", "piece_text", "piece_tokens",
                "piece_len")


class EmojiData:
    def __init__(self, path, device, limit=None):
        """limit: keep only the first `limit` emoji (the --tiny runs); the held-out split is filtered to them."""
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        n = len(data["name"]) if limit is None else min(limit, len(data["name"]))
        for key in ("image", "name", "short_name", "keywords", "category", "subcategory", "unified"):
            data[key] = data[key][:n]
        self.n = n
        self.names = [str(s) for s in data["name"]]
        self.device = device
        self.bank = captions.CaptionBank(data)
        self.compositor = Compositor(data["image"], device)
        self.heldout_emoji = data["heldout_emoji"][data["heldout_emoji"] < n]
        self.heldout_pairs = data["heldout_pairs"][data["heldout_pairs"][:, 0] < n]
        allowed = np.ones((n, len(captions.COLOURS)), dtype=bool)
        allowed[self.heldout_emoji] = False
        allowed[self.heldout_pairs[:, 0], self.heldout_pairs[:, 1]] = False
        self.train_pairs = np.argwhere(allowed)  # [P, 2] (emoji, colour) the generator may see

    def sample(self, batch, rng, composition_share=captions.COMPOSITION_SHARE):
        """Random training (emoji, colour, composition) int arrays [B] from the allowed pairs."""
        pick = self.train_pairs[rng.randint(0, len(self.train_pairs), batch)]
        comp = np.where(rng.random_sample(batch) < composition_share,
                        rng.randint(1, len(captions.COMPOSITIONS), batch), 0)
        return pick[:, 0], pick[:, 1], comp

    def images(self, emoji, colour, comp):
        """float [B, 3, 64, 64] in [-1, 1] on the device."""
        return self.compositor(*(torch.as_tensor(a, dtype=torch.long, device=self.device) for a in (emoji, colour, comp)))

    def caption_tokens(self, emoji, colour, comp, rng, empty_share=captions.EMPTY_SHARE):
        """Random captions for the batch: token ids [B, 77] on the device (empty_share of them empty)."""
        pieces = self.bank.sample_pieces(emoji, colour, comp, rng)
        drop = rng.random_sample(len(emoji)) < empty_share
        return torch.as_tensor(self.bank.tokens(pieces, drop), device=self.device)

    def eval_tokens(self, emoji, colour):
        """"<name> on a <colour> background" token ids [B, 77] on the device."""
        return torch.as_tensor(self.bank.tokens(self.bank.eval_pieces(emoji, colour)), device=self.device)

    def eval_texts(self, emoji, colour):
        return self.bank.text(self.bank.eval_pieces(emoji, colour))

    def empty_tokens(self, batch):
        pieces = np.full((batch, captions.MAX_SLOTS), self.bank.empty, dtype=np.int64)
        return torch.as_tensor(self.bank.tokens(pieces), device=self.device)
