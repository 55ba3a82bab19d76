"""MobileNetV2 1.0 (batch-norm free), the PyTorch port of the Coral tflite classifier.

Self-contained: the network, its TFLite-compatible padding, and a loader for the converted weights
(``vidcolor/weights/mobilenet_v2_1.0_224_coral.safetensors``, produced by
``vidcolor.models.convert_tflite`` from ``mobilenet_v2_1.0_224_quant.tflite``; Apache-2.0, from
google-coral/test_data). Batch norm is folded into the convolutions, so every conv has a bias and
ReLU6 follows the expand and depthwise convolutions.

Input: RGB scaled to [-1, 1] (what the quantised model's uint8 input means: (q - 128) / 128),
NCHW. Output: 1001 logits (index 0 = background, index i = i-th of the sorted ImageNet wnids + 1).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_NAME = "mobilenet_v2_1.0_224_coral.safetensors"
WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "weights" / WEIGHTS_NAME

# (expansion, out channels, stride) of blocks 0..16 ("expanded_conv", "expanded_conv_1", ...)
BLOCKS = [
    (1, 16, 1),
    (6, 24, 2), (6, 24, 1),
    (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
    (6, 96, 1), (6, 96, 1), (6, 96, 1),
    (6, 160, 2), (6, 160, 1), (6, 160, 1),
    (6, 320, 1),
]
# index of the block whose output is the feature map at stride 2, 4, 8, 16, 32
FEATURE_BLOCKS = (0, 2, 5, 12, 16)
FEATURE_CHANNELS = (16, 24, 32, 96, 320)


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TFLite/TF "SAME" padding: total = max((ceil(n/s)-1)*s + k - n, 0), the odd pixel goes
    right/bottom (so a stride-2 3x3 conv on an even size pads 0 left, 1 right)."""
    h, w = x.shape[-2:]

    def total(n: int) -> int:
        return max((-(-n // stride) - 1) * stride + kernel - n, 0)

    th, tw = total(h), total(w)
    if th == 0 and tw == 0:
        return x
    return F.pad(x, (tw // 2, tw - tw // 2, th // 2, th - th // 2))


class SameConv(nn.Conv2d):
    """Conv2d with TF "SAME" padding computed from the input size."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride=stride, padding=0, groups=groups, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D401
        k = self.kernel_size[0]
        if self.stride[0] == 1:
            p = (k - 1) // 2
            return F.conv2d(x, self.weight, self.bias, 1, p, 1, self.groups)
        return F.conv2d(same_pad(x, k, self.stride[0]), self.weight, self.bias, self.stride, 0, 1, self.groups)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.expand = SameConv(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride=stride, groups=hidden)
        self.project = SameConv(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand is not None:
            h = F.relu6(self.expand(h))
        h = F.relu6(self.depthwise(h))
        h = self.project(h)
        return x + h if self.residual else h


class MobileNetV2(nn.Module):
    """MobileNetV2 1.0 without batch norm. ``features(x)`` gives the five U-Net skip maps."""

    def __init__(self, num_classes: int = 1001):
        super().__init__()
        self.conv0 = SameConv(3, 32, 3, stride=2)
        blocks = []
        cin = 32
        for t, c, s in BLOCKS:
            blocks.append(InvertedResidual(cin, c, t, s))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        self.conv_last = SameConv(320, 1280, 1)
        self.logits = nn.Conv2d(1280, num_classes, 1)

    def features(self, x: torch.Tensor, upto: int = 16) -> list[torch.Tensor]:
        """Skip features at strides 2, 4, 8, 16, 32 (only those with block index <= ``upto``)."""
        return self._trunk(x, upto)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def features_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The five skip maps and the class logits from one pass (the training losses use both)."""
        out, h = self._trunk(x)
        return out, self._pooled_and_logits(h)[1]

    def pooled_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1280) pooled features (the classifier's penultimate layer) and (N, 1001) logits."""
        return self._pooled_and_logits(self._trunk(x)[1])

    def _pooled_and_logits(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = F.relu6(self.conv_last(h)).mean(dim=(2, 3), keepdim=True)
        return pooled.flatten(1), self.logits(pooled).flatten(1)

    def _trunk(self, x: torch.Tensor, upto: int = 16) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(skip maps of blocks <= ``upto``, output of the last block run)."""
        out = []
        h = F.relu6(self.conv0(x))
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in FEATURE_BLOCKS:
                out.append(h)
            if i >= upto:
                break
        return out, h


def load_mobilenet_v2(path: str | Path | None = None, device: str | torch.device = "cpu") -> MobileNetV2:
    """The converted Coral weights (float32, dequantised) in a fresh eval-mode network."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else WEIGHTS_PATH
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: converted MobileNetV2 weights missing; run `python -m vidcolor.models.convert_tflite`"
        )
    model = MobileNetV2()
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    return model.eval().to(device)


def preprocess_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 255] float RGB, NHWC or NCHW with C=3 last... -> NCHW in [-1, 1).

    Accepts NHWC (as images are stored); the quantised model's input is (q - 128) / 128.
    """
    x = rgb.float()
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    return (x - 128.0) / 128.0
