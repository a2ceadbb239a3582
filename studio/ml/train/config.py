"""The settings of a training run: one dataclass, stored as the run folder's config.json.

`TrainConfig` holds everything the engine needs besides the frozen dataset, so a run can
be repeated or resumed from its folder alone. Fields left at None take a default that
depends on other fields (the learning rate on the optimizer, the number of frozen epochs
on the backbone weights, ...); `resolved()` fills them in, and the engine stores the
resolved values in each checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError

CONFIG_NAME = "config.json"
DEFAULT_TIME_BUDGET = 600.0  # seconds: what one click trains for
# Progressive resizing from scratch (resize.py): the share of the input side a run from
# random init starts at (about 0.4 of the pixels).
SCRATCH_RESIZE_FROM = 0.625
OPTIMIZERS = ("adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(slots=True)
class TrainConfig:
    # --- model ---------------------------------------------------------------------------
    # A name from `studio.ml.models.list_models()`, or "package.module:function" for a
    # model factory of your own (called like `build_model`; used by the tests).
    model: str = ""
    task: str = ""  # filled from the model's spec: detection / instance / semantic seg
    weights: str = "default"  # "none" | "default" (COCO) | path to a .pt state dict
    backbone_weights: str = "imagenet"  # "none" | "imagenet" | path
    image_size: int | None = None  # shorter image side in pixels; None: the model's default
    model_options: dict[str, Any] = field(default_factory=dict)  # passed to build_model

    # --- length --------------------------------------------------------------------------
    # One click trains for a time budget; epochs are there for those who want them. Both
    # set: whichever ends first.
    epochs: int | None = None
    time_budget: float | None = DEFAULT_TIME_BUDGET  # seconds of the whole run, evaluation
    # included: training stops early enough for the last evaluation to fit
    # Validations without improvement before stopping; None: never. Runs given epochs
    # only: a time budget's schedule decays to its end, where its best model comes.
    patience: int | None = 10
    min_delta: float = 0.0  # smallest increase of the metric that counts as improvement

    # --- optimisation --------------------------------------------------------------------
    batch_size: int = 4  # images per step and process
    optimizer: str = "adamw"  # "adamw" | "sgd" (momentum 0.9; for training from scratch)
    # Head learning rate; None: scaled with the batch size (see `default_lr`).
    lr: float | None = None
    # Backbone lr = lr * this; None: 0.1 for a pretrained backbone (keeps its features),
    # 1.0 for one learning from scratch.
    backbone_lr_mult: float | None = None
    weight_decay: float = 1e-4  # not applied to biases and norm weights
    momentum: float = 0.9  # SGD only
    warmup_iters: int = 200  # linear warmup, capped at a tenth of the planned iterations
    warmup_factor: float = 1e-3  # lr multiplier at iteration 0
    min_lr_ratio: float = 0.0  # cosine decay ends at lr * this
    # Share of the run (planned iterations, or of the time budget) at the full rate
    # before the cosine decay starts; 0: cosine over the whole run. A short run far from
    # converged learns more at the full rate and still gets the decay's gain at its end
    # (warmup-stable-decay). On the demo from scratch, 480 iterations, AP50: 0.557 with
    # 0.75, 0.547 with 0.6, 0.460 with a cosine over the whole run.
    lr_decay_start: float = 0.75
    # Progressive resizing (resize.py): training inputs start at this share of the input
    # side and grow to the full side by lr_decay_start. None: 0.625 for a run from
    # scratch (SCRATCH_RESIZE_FROM), 1 (off) on pretrained weights; 1: off.
    resize_from: float | None = None
    # None: with pretrained weights, progressive unfreezing planned over the expected
    # iterations (see schedule.py); without, nothing frozen. N: backbone frozen N epochs.
    freeze_epochs: int | None = None
    clip_grad_norm: float | None = 10.0
    # Validate and save an exponential moving average of the weights (ema.py): better
    # models from short, noisy runs, at one copy of the weights in memory.
    ema: bool = True
    amp: bool = True  # mixed precision; CUDA only
    channels_last: bool = True  # CUDA only
    max_nonfinite: int = 3  # non-finite losses in a row that fail the run

    # --- data ----------------------------------------------------------------------------
    hflip: float = 0.5  # probability of a horizontal flip
    color_jitter: float = 0.2  # brightness/contrast/saturation strength; 0: off
    # Hue jitter costs about 0.19 s per 512x384 image on a CPU, more than the rest of the
    # data pipeline together: None means on with a GPU only.
    hue_jitter: bool | None = None
    cache_images: bool = True  # keep decoded, resized train images in memory when they fit
    scale_range: tuple[float, float] = (0.75, 1.25)  # random shorter side, x image_size
    aspect_ratio_grouping: bool = True
    val_fraction: float = 0.1  # of train images held out when the val split is empty
    workers: int | None = None  # DataLoader processes; None: where they help (datasets.py)

    # --- bookkeeping ---------------------------------------------------------------------
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"
    seed: int = 0
    eval_every: int = 1  # epochs
    db_flush_every: int = 20  # iterations between writes of iteration metrics

    # ------------------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise `StudioError` naming the first field that cannot work."""
        if self.epochs is None and self.time_budget is None:
            raise StudioError("give a number of epochs, a time budget, or both")
        if self.epochs is not None and self.epochs < 1:
            raise StudioError(f"epochs must be at least 1, got {self.epochs}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise StudioError(f"time budget must be positive seconds, got {self.time_budget}")
        if self.batch_size < 1:
            raise StudioError(f"batch size must be at least 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise StudioError(
                f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        if self.lr is not None and not self.lr > 0:
            raise StudioError(f"learning rate must be positive, got {self.lr}")
        if self.image_size is not None and self.image_size < 32:
            raise StudioError(f"image size must be at least 32 pixels, got {self.image_size}")
        if self.workers is not None and self.workers < 0:
            raise StudioError(f"workers must be 0 or more, got {self.workers}")
        if self.patience is not None and self.patience < 1:
            raise StudioError(f"patience must be at least 1 epoch, got {self.patience}")
        if self.max_nonfinite < 1:
            raise StudioError("max_nonfinite must be at least 1")
        if self.resize_from is not None and not 0 < self.resize_from <= 1:
            raise StudioError(f"resize_from must be in (0, 1], got {self.resize_from}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise StudioError(f"scale range must be 0 < low <= high, got {self.scale_range}")
        if not 0 <= self.val_fraction < 1:
            raise StudioError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        for name, value in (("hflip", self.hflip), ("color jitter", self.color_jitter),
                            ("lr decay start", self.lr_decay_start)):  # fmt: skip
            if not 0 <= value <= 1:  # a probability, a strength, a share of the run
                raise StudioError(f"{name} must be in [0, 1], got {value}")
        if self.backbone_lr_mult is not None and not 0 <= self.backbone_lr_mult <= 10:
            raise StudioError(f"backbone lr mult must be in [0, 10], got {self.backbone_lr_mult}")
        dev = self.device.split(":")[0]
        if dev not in DEVICES:
            raise StudioError(f"unknown device {self.device!r}; use auto, cpu, cuda[:N] or mps")

    def resolved(
        self, *, pretrained_model: bool = False, from_scratch: bool = False
    ) -> TrainConfig:
        """A copy with the defaults that depend on other fields filled in.

        `pretrained_model`: the whole model (not only its backbone) starts from trained
        weights, which a smaller learning rate keeps. `from_scratch`: nothing pretrained
        was loaded (asked for none, or none could be had), which a larger one suits."""
        lr = self.lr
        if lr is None:
            lr = default_lr(self.optimizer, self.batch_size, pretrained_model, from_scratch)
        # The backbone's smaller learning rate keeps pretrained features; a backbone
        # learning from nothing needs the full one (at a tenth, the demo's CPU detector
        # reached AP50 0.23 in 5 minutes where a plain loop at full rate had 0.30).
        mult = self.backbone_lr_mult
        if mult is None:
            mult = 1.0 if from_scratch else 0.1
        return replace(self, lr=lr, backbone_lr_mult=mult)

    @property
    def pretrained(self) -> bool:
        """Whether training starts from any pretrained weights (backbone or whole)."""
        return self.backbone_weights != "none" or self.weights != "none"

    def given_weights_files(self) -> list[str]:
        """The weights files given (`weights` or `backbone_weights` other than a name)."""
        named = ("none", "default", "imagenet")
        return [w for w in (self.weights, self.backbone_weights) if w not in named]

    # --- JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scale_range"] = list(self.scale_range)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from `to_dict` output. Unknown keys raise: a typo must not be ignored."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise StudioError(f"unknown training setting(s): {', '.join(unknown)}")
        data = dict(data)
        if "scale_range" in data:
            data["scale_range"] = tuple(float(v) for v in data["scale_range"])
        if data.get("model_options") is None:
            data["model_options"] = {}
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise StudioError(f"training config is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise StudioError("training config must be a JSON object")
        return cls.from_dict(data)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, then os.replace)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise StudioError(f"{path}: cannot read training config: {e.strerror}") from None
        return cls.from_json(text)


def default_lr(
    optimizer: str, batch_size: int, pretrained_model: bool = False, from_scratch: bool = False
) -> float:
    """Head learning rate for `batch_size` images per step, linear in the batch size.

    AdamW: 1e-3 per 8 images for heads trained on a pretrained backbone, 1e-4 per 8 when
    the whole detector is pretrained, 2e-3 per 8 when nothing is (with the backbone at
    the full rate too: on the demo's CPU detector, 5 minutes in batches of 8 gave AP50
    0.29 at 2e-3 and 0.14 at 6e-3). SGD: torchvision's references/detection, 0.02 per 16
    images."""
    if optimizer == "sgd":
        return 0.02 * batch_size / 16
    if pretrained_model:
        return 1e-4 * batch_size / 8
    return (2e-3 if from_scratch else 1e-3) * batch_size / 8


def default_workers() -> int:
    """DataLoader worker processes: min(4, cpu_count - 1), 0 on a single core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
