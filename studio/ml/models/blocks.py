"""YOLO-style building blocks for the PAN neck. All take and return NCHW float tensors.

Channel arguments follow the YOLO convention: `c1` in, `c2` out, `e` the hidden-width ratio.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

# YOLO's BatchNorm settings: the faster momentum suits the short schedules of fine-tuning.
_BatchNorm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)


class Conv(Conv2dNormActivation):
    """Conv-BN-SiLU with "same" padding: [N,c1,H,W] -> [N,c2,ceil(H/s),ceil(W/s)]."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True):
        super().__init__(
            c1,
            c2,
            kernel_size=k,
            stride=s,
            groups=g,
            norm_layer=_BatchNorm,
            activation_layer=nn.SiLU if act else None,
        )


class Bottleneck(nn.Module):
    """Two convs with an optional residual (only when c1 == c2): [N,c1,H,W] -> [N,c2,H,W]."""

    def __init__(
        self,
        c1: int,
        c2: int,
        shortcut: bool = True,
        g: int = 1,
        k: tuple[int, int] = (3, 3),
        e: float = 0.5,
    ):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, k[0])
        self.cv2 = Conv(hidden, c2, k[1], g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convs (YOLOv5): [N,c1,H,W] -> [N,c2,H,W]."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, e: float = 0.5):
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden)
        self.cv2 = Conv(c1, hidden)
        self.cv3 = Conv(2 * hidden, c2)
        self.m = nn.Sequential(
            *(Bottleneck(hidden, hidden, shortcut, k=(1, 3), e=1.0) for _ in range(n))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class C2f(nn.Module):
    """CSP bottleneck with 2 convs and every bottleneck's output concatenated (YOLOv8):
    [N,c1,H,W] -> [N,c2,H,W]."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(
            Bottleneck(self.c, self.c, shortcut, k=(3, 3), e=1.0) for _ in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, dim=1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained k x k max-pools, whose outputs see ever larger
    windows, concatenated. [N,c1,H,W] -> [N,c2,H,W]."""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden)
        self.cv2 = Conv(hidden * 4, c2)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, dim=1))


class SpaceToDepth(nn.Module):
    """Lossless 2x downsampling (SPD-Conv): each 2x2 pixel block becomes 4 channels, then a
    non-strided conv mixes them. Unlike a strided conv no pixel is skipped, which helps small
    objects. [N,c1,H,W] -> [N,c2,ceil(H/2),ceil(W/2)]."""

    def __init__(self, c1: int, c2: int, k: int = 3):
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(2)
        self.conv = Conv(4 * c1, c2, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            # Pad odd sizes so the output matches a stride-2 conv's ceil(H/2).
            x = F.pad(x, (0, w % 2, 0, h % 2))
        return self.conv(self.unshuffle(x))
