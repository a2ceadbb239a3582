"""Optimisation: parameter groups, the optimizer and the per-iteration learning rate.

As torchvision's references/detection: AdamW (or SGD with momentum), the backbone at a
fraction of the head's rate, no weight decay on biases and norm weights, linear warmup
then cosine decay per iteration, and a GradScaler for mixed precision on CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from studio.ml.train.config import TrainConfig


def make_param_groups(
    groups: dict[str, list[nn.Parameter]], lr: float, backbone_mult: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Optimizer groups per part (backbone at lr * backbone_mult, neck and head at lr),
    each split into decayed weights and undecayed biases / norm parameters (ndim <= 1),
    as torchvision's references do with --norm-weight-decay 0."""
    out = []
    seen: set[int] = set()
    for part in ("backbone", "neck", "head"):
        params = [p for p in groups.get(part, []) if id(p) not in seen]
        seen.update(id(p) for p in params)
        part_lr = lr * backbone_mult if part == "backbone" else lr
        for decay in (True, False):
            ps = [p for p in params if (p.ndim > 1) == decay]
            if ps:
                out.append(
                    {
                        "params": ps,
                        "lr": part_lr,
                        "initial_lr": part_lr,
                        "weight_decay": weight_decay if decay else 0.0,
                        "part": part,
                    }
                )
    return out


def make_optimizer(cfg: TrainConfig, param_groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(param_groups, lr=cfg.lr)


class WarmupCosine:
    """Per-iteration learning rate: linear warmup from `warmup_factor` x to 1 x over
    `warmup_iters`, then cosine decay to `min_ratio` x as `progress` goes 0 -> 1.

    Progress is given by the caller (fraction of planned iterations, or of the time
    budget), which a LambdaLR of the step count cannot express. A plan re-made from a
    time budget moves with the measured speed; the progress used never goes back, so
    the rate after warmup only decreases. During warmup the rate only increases: a
    re-plan that lengthens the warmup holds it until the ramp catches up (a speed
    measured step by step made it jitter). Each group's base rate is its "initial_lr"."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_iters: int,
        warmup_factor: float,
        min_ratio: float = 0.0,
        decay_start: float = 0.0,
    ):
        self.optimizer = optimizer
        self.warmup_iters = max(0, warmup_iters)
        self.warmup_factor = warmup_factor
        self.min_ratio = min_ratio
        self.decay_start = min(max(decay_start, 0.0), 0.99)
        self.factor = 1.0
        self.progress = 0.0  # the furthest progress seen
        self.warm = 0.0  # the highest warmup factor set
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])

    def factor_at(self, iteration: int, progress: float) -> float:
        if iteration < self.warmup_iters:
            a = iteration / self.warmup_iters
            return self.warmup_factor * (1 - a) + a
        p = min(max(progress, 0.0), 1.0)
        p = max(0.0, (p - self.decay_start) / (1.0 - self.decay_start))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    def step(self, iteration: int, progress: float) -> None:
        """Set the rates for optimizer step number `iteration` (0-based)."""
        if iteration >= self.warmup_iters:
            self.progress = max(self.progress, min(max(progress, 0.0), 1.0))
            self.factor = self.factor_at(iteration, self.progress)
        else:
            self.factor = self.warm = max(self.warm, self.factor_at(iteration, progress))
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.factor

    def state_dict(self) -> dict[str, Any]:
        return {
            "warmup_iters": self.warmup_iters,
            "warmup_factor": self.warmup_factor,
            "min_ratio": self.min_ratio,
            "decay_start": self.decay_start,
            "factor": self.factor,
            "progress": self.progress,
            "warm": self.warm,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warmup_iters = int(state["warmup_iters"])
        self.warmup_factor = float(state["warmup_factor"])
        self.min_ratio = float(state["min_ratio"])
        self.decay_start = float(state.get("decay_start", 0.0))
        self.factor = float(state["factor"])
        self.progress = float(state.get("progress", 0.0))
        self.warm = float(state.get("warm", 0.0))


@dataclass(slots=True)
class Optimization:
    """What steps the weights: optimizer, learning-rate schedule and AMP scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: WarmupCosine
    scaler: torch.amp.GradScaler
    head_group: int  # index of the head's parameter group (its lr is the one reported)
    total_iters: int | None  # planned optimizer steps; None with a time budget only


def build_optimization(
    cfg: TrainConfig,
    groups: dict[str, list[nn.Parameter]],
    iters_per_epoch: int,
    scale_loss: bool,
) -> Optimization:
    """The optimizer over `groups` ("backbone" / "neck" / "head") for resolved `cfg`, with a
    warmup capped at a tenth of the planned iterations (one epoch with a time budget);
    `scale_loss`: a GradScaler for float16 mixed precision (bfloat16 needs none)."""
    param_groups = make_param_groups(groups, cfg.lr, cfg.backbone_lr_mult, cfg.weight_decay)
    optimizer = make_optimizer(cfg, param_groups)
    head_group = next((i for i, g in enumerate(optimizer.param_groups) if g["part"] == "head"), 0)
    total = cfg.epochs * iters_per_epoch if cfg.epochs else None
    # schedule.PlannedSchedule re-plans the warmup from the expected iterations.
    warmup = cfg.warmup_iters
    warmup = min(warmup, total // 10) if total else min(warmup, iters_per_epoch)
    scheduler = WarmupCosine(
        optimizer, warmup, cfg.warmup_factor, cfg.min_lr_ratio, cfg.lr_decay_start
    )
    scaler = torch.amp.GradScaler("cuda", enabled=scale_loss)  # float16 AMP only
    return Optimization(optimizer, scheduler, scaler, head_group, total)
