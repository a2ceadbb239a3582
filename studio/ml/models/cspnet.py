"""A small CSP backbone made to be trained from scratch on a CPU.

Where no ImageNet file is on the machine, the torchvision backbones start from random
init; MobileNet's depthwise convolutions, hard-swish and squeeze-excitation then cost the
most where a CPU is weakest (the backward pass of depthwise convolutions) and learn slowly
from nothing. This one is YOLOv8's backbone in miniature: dense 3x3 convolutions with
BatchNorm and SiLU, stride-2 downsampling, C2f blocks with residual bottlenecks. Measured
with 1 thread on the demo's 352 px batches of 8 (CPU time per step, composable PAN + FCOS
head, 64 channels): MobileNetV3-Large 2.1 s, `cspnet_n` 0.82 s, `cspnet_t` 0.57 s.

`CSPNet(widths, depths)`: [N,3,H,W] -> OrderedDict C3/C4/C5 at strides 8/16/32 with
widths[2], widths[3], widths[4] channels (ceil of H/s, W/s).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from studio.ml.models.blocks import C2f, Conv

# name -> (widths of the stem and the four stages, bottlenecks per stage)
SCRATCH_BACKBONES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "cspnet_t": ((16, 32, 48, 96, 192), (1, 1, 1, 1)),
    "cspnet_n": ((16, 32, 64, 128, 256), (1, 2, 2, 1)),
    "cspnet_s": ((32, 64, 128, 256, 512), (1, 2, 2, 1)),
}


class CSPNet(nn.Module):
    """Stem (3x3, stride 2), then four stages of a stride-2 conv and a C2f block; C3, C4
    and C5 are the outputs of the last three stages."""

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...]):
        super().__init__()
        w = widths
        self.stem = Conv(3, w[0], 3, 2)
        self.stage2 = nn.Sequential(Conv(w[0], w[1], 3, 2), C2f(w[1], w[1], depths[0], True))
        self.stage3 = nn.Sequential(Conv(w[1], w[2], 3, 2), C2f(w[2], w[2], depths[1], True))
        self.stage4 = nn.Sequential(Conv(w[2], w[3], 3, 2), C2f(w[3], w[3], depths[2], True))
        self.stage5 = nn.Sequential(Conv(w[3], w[4], 3, 2), C2f(w[4], w[4], depths[3], True))

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        c3 = self.stage3(self.stage2(self.stem(x)))
        c4 = self.stage4(c3)
        c5 = self.stage5(c4)
        return OrderedDict((("C3", c3), ("C4", c4), ("C5", c5)))


def build_cspnet(name: str) -> CSPNet:
    """The scratch backbone `name` (a key of SCRATCH_BACKBONES)."""
    widths, depths = SCRATCH_BACKBONES[name]
    return CSPNet(widths, depths)
