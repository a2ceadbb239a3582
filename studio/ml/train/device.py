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


def auto_device() -> str:
    """The device "auto" picks here: "cuda", "mps" or "cpu"."""
    return resolve_device("auto").type
