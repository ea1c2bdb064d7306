"""EmojiClassifier: a small CNN that tells which emoji (of 1906) and which background colour (of 12) a 64x64
RGB image shows. It scores generated images ("prompt accuracy") and gives the features for the Frechet distance.

  input [B, 3, 64, 64] in [-1, 1]
  stem   conv3x3 s2 3->32                       [B, 32, 32, 32]
  stage  (conv3x3 s1, conv3x3 s2) x 3: 32->64->128->256   [B, 256, 4, 4]
  pool   global average                         [B, 256]
  neck   linear 256->128, ReLU                  [B, 128]   <- `features` (the FD embedding)
  heads  linear 128->1906 (emoji), 128->12 (colour)
Every conv is followed by BatchNorm and ReLU.
"""
import torch.nn.functional as F
from torch import nn

FEATURES = 128


def _conv(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EmojiClassifier(nn.Module):
    def __init__(self, num_emoji, num_colours=12, widths=(32, 64, 128, 256)):
        super().__init__()
        layers = [_conv(3, widths[0], 2)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [_conv(cin, cin, 1), _conv(cin, cout, 2)]
        self.body = nn.Sequential(*layers)
        self.neck = nn.Linear(widths[-1], FEATURES)
        self.emoji_head = nn.Linear(FEATURES, num_emoji)
        self.colour_head = nn.Linear(FEATURES, num_colours)
        self.num_emoji, self.num_colours, self.widths = num_emoji, num_colours, tuple(widths)

    def features(self, images):
        """images [B, 3, 64, 64] in [-1, 1] -> [B, 128]."""
        x = self.body(images)                      # [B, 256, 4, 4]
        return F.relu(self.neck(x.mean(dim=(2, 3))))  # [B, 128]

    def forward(self, images):
        """-> (emoji logits [B, num_emoji], colour logits [B, num_colours], features [B, 128])."""
        f = self.features(images)
        return self.emoji_head(f), self.colour_head(f), f


def save_classifier(model, path, metadata):
    import st
    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    meta = dict(metadata, num_emoji=model.num_emoji, num_colours=model.num_colours,
                widths=",".join(map(str, model.widths)))
    st.save(path, tensors, meta)


def load_classifier(path, device="cpu"):
    """Loads the fp16 file into an fp32 model in eval mode. Returns (model, metadata)."""
    import st
    tensors, meta = st.load(path)
    model = EmojiClassifier(int(meta["num_emoji"]), int(meta["num_colours"]),
                            tuple(int(w) for w in meta["widths"].split(",")))
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()})
    return model.to(device).eval(), meta
