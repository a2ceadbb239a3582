"""How focused a model's attention is: the entropy of its attention weights, per level.

Which weights are measured:
- CBAM: the spatial map [N,1,H,W], normalised to sum 1 over the H*W cells. Uniform attention
  over N = H*W cells has entropy log(N); attention on one cell has 0.
- SE and ECA (channel attention only): the channel weights [N,C], normalised to sum 1 over
  the C channels; the maximum is log(C).

Entropies are in nats (natural logarithm), the mean over the batch. Lower = more focused.
Because the maximum depends on the cell or channel count, each entry also carries that
maximum, and `relative` (entropy / maximum, 0..1) compares levels of different sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from studio.ml.models.attention import ChannelAttentionBase


@dataclass(frozen=True, slots=True)
class LevelEntropy:
    """The attention entropy of one module. `level`: "P3".. for the composable detector's
    modules, else the module path; `kind`: "spatial" (CBAM) or "channel" (SE, ECA);
    `module`: its class name; `entropy` and `max_entropy` in nats (max = log of the number
    of cells or channels)."""

    level: str
    kind: str
    module: str
    entropy: float
    max_entropy: float

    @property
    def relative(self) -> float:
        """entropy / max_entropy: 1 for uniform attention, 0 for one cell or channel."""
        return self.entropy / self.max_entropy if self.max_entropy > 0 else 0.0


def attention_entropy(weights: torch.Tensor) -> float:
    """The mean over the batch of the Shannon entropy (nats) of each sample's weights
    ([N, ...], non-negative; everything after the batch dimension is one distribution),
    each normalised to sum 1. A sample whose weights are all 0 counts as uniform."""
    w = weights.detach().double().flatten(1).clamp(min=0)
    n = w.shape[1]
    total = w.sum(dim=1, keepdim=True)
    p = torch.where(total > 0, w / total.clamp(min=1e-300), torch.full_like(w, 1.0 / n))
    # xlogy gives 0 * log 0 = 0: cells without attention add nothing.
    h = -torch.special.xlogy(p, p).sum(dim=1)
    return float(h.mean())


def _level_of(path: str) -> str:
    parent, _, last = path.rpartition(".")
    return last if parent.endswith("backbone.attention") else path


def attention_entropies(model: nn.Module) -> list[LevelEntropy]:
    """The entropy of every attention module's weights from the model's last forward pass,
    in module order; empty when the model has none or they have not run yet."""
    out = []
    for path, module in model.named_modules():
        if not isinstance(module, ChannelAttentionBase) or module.last_attention is None:
            continue
        weights = module.last_attention
        spatial = weights.spatial is not None
        w = weights.spatial if spatial else weights.channel
        count = math.prod(w.shape[1:])
        out.append(
            LevelEntropy(
                _level_of(path),
                "spatial" if spatial else "channel",
                type(module).__name__,
                attention_entropy(w),
                math.log(count),
            )  # fmt: skip
        )
    return out


def image_attention_entropies(model: nn.Module, image: np.ndarray) -> list[LevelEntropy]:
    """Run `model` (eval mode, no gradients) on `image` (RGB uint8 [h, w, 3]) and return the
    entropy of each attention module's weights on it (`attention_entropies`)."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)
    model.eval()
    with torch.no_grad():
        model([x.to(device)])
    return attention_entropies(model)


def format_entropies(entries: list[LevelEntropy]) -> str:
    """One line for the panel: which weights were measured and the entropy of each level,
    with its share of the maximum. Empty for no entries."""
    if not entries:
        return ""
    kinds = sorted({f"{e.module} {e.kind}" for e in entries})
    levels = ", ".join(
        f"{e.level} {e.entropy:.2f} ({e.relative:.0%} of max {e.max_entropy:.2f})" for e in entries
    )
    return (
        f"Mean attention entropy ({', '.join(kinds)} weights; nats, lower = more focused): {levels}"
    )
