"""Attention modules for feature maps: SE and ECA (channel) and CBAM (channel, then spatial).

Each takes and returns NCHW float tensors of the same shape ([N,C,H,W] -> [N,C,H,W]): the
input reweighted by weights in 0..1. Each keeps the weights of its last forward pass in
`last_attention` (an `AttentionWeights`), detached from the autograd graph, so they can be
shown and measured (studio.ml.analysis.attention_entropy) without keeping a graph alive.
Storing them costs a reference only: the tensors exist anyway for the multiplication.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

# The attention kinds of the composable detector's `attention` option; "none" adds nothing.
ATTENTIONS = ("none", "se", "eca", "cbam")


class AttentionWeights(NamedTuple):
    """The weights of one forward pass: `channel` [N,C] in 0..1 (every module) and `spatial`
    [N,1,H,W] in 0..1 (CBAM only, else None), at the feature map's resolution."""

    channel: torch.Tensor
    spatial: torch.Tensor | None = None


class ChannelAttentionBase(nn.Module):
    """What the attention modules share: `last_attention`, None before the first forward."""

    kind = ""  # "se", "eca" or "cbam": the option value that builds the module

    def __init__(self) -> None:
        super().__init__()
        self.last_attention: AttentionWeights | None = None


def _hidden(channels: int, reduction: int) -> int:
    return max(1, channels // reduction)


class SE(ChannelAttentionBase):
    """Squeeze-and-excitation (Hu et al., 2018): global average pool, a two-layer MLP
    (C -> C/r -> C, ReLU, sigmoid) gives one weight per channel.
    Params: 2 * C * (C // r) + C // r + C."""

    kind = "se"

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        self.last_attention = AttentionWeights(w.detach())
        return x * w[:, :, None, None]


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size (Wang et al., 2020): |(log2(C) + b) / gamma| rounded down
    to an int, then up to the next odd number (C = 128 -> 5, C = 256 -> 5, C = 64 -> 3)."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(ChannelAttentionBase):
    """Efficient channel attention (Wang et al., 2020): global average pool, then a 1-D
    convolution across the channel descriptors (no dimensionality reduction; kernel size
    from the channel count, `eca_kernel_size`), sigmoid. Params: k (no bias)."""

    kind = "eca"

    def __init__(self, channels: int, kernel_size: int | None = None):
        super().__init__()
        k = kernel_size or eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean(dim=(2, 3))[:, None, :])  # [N,1,C]: channels as a sequence
        w = torch.sigmoid(y[:, 0])
        self.last_attention = AttentionWeights(w.detach())
        return x * w[:, :, None, None]


class SpatialGate(nn.Module):
    """CBAM's spatial attention: a k x k conv (no bias) over the channel-wise mean and max
    ([N,2,H,W]), sigmoid: [N,C,H,W] -> weights [N,1,H,W]. Params: 2 * k * k."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)
        return torch.sigmoid(self.conv(pooled))


class CBAM(ChannelAttentionBase):
    """Convolutional block attention module (Woo et al., 2018): channel attention (one MLP
    C -> C/r -> C shared by the average- and max-pooled descriptors, summed, sigmoid), then
    spatial attention (`SpatialGate`, 7x7) on the channel-weighted map.
    Params: 2 * C * (C // r) + C // r + C + 2 * 49."""

    kind = "cbam"

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        # A module of its own so that its output (the spatial map) can be hooked and shown.
        self.spatial = SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wc = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        x = x * wc[:, :, None, None]
        ws = self.spatial(x)
        self.last_attention = AttentionWeights(wc.detach(), ws.detach())
        return x * ws


_MODULES: dict[str, type[ChannelAttentionBase]] = {"se": SE, "eca": ECA, "cbam": CBAM}


def make_attention(kind: str, channels: int) -> ChannelAttentionBase | None:
    """The module for `kind` (one of ATTENTIONS) on `channels` channels; None for "none".
    ValueError for an unknown kind (the caller names the option)."""
    if kind == "none":
        return None
    if kind not in _MODULES:
        raise ValueError(f"unknown attention {kind!r}; choose one of: {', '.join(ATTENTIONS)}")
    return _MODULES[kind](channels)
