"""Which device trains: the one place that turns "auto" or a device name into a device."""

from __future__ import annotations

import torch

from studio.core.errors import StudioError


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto": CUDA if available, else Apple's MPS, else the CPU. Raises StudioError when a
    named device is not available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StudioError("device cuda was asked for but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise StudioError("device mps was asked for but Apple's MPS is not available")
    return dev


def amp_dtype(device: torch.device, amp: bool = True) -> torch.dtype | None:
    """The autocast dtype of mixed-precision training on `device`: bfloat16 on a CUDA GPU
    that supports it (Ampere and later: float32's range, so no loss scaling), float16
    on an older one (with a GradScaler), None on other devices or with `amp` off. On a
    CPU without bfloat16 instructions, autocast made a step of the CPU detector 11x
    slower (README); float32 it is."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def precision_name(dtype: torch.dtype | None) -> str:
    """How a run's arithmetic is said: "float32", or "bfloat16 mixed" / "float16 mixed"."""
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} mixed"


def auto_device() -> str:
    """The device "auto" picks here: "cuda", "mps" or "cpu"."""
    return resolve_device("auto").type
