"""Export a trained run's model for use outside Studio: TorchScript or ONNX.

Beside the model file goes ``<out>.json`` with what a consumer needs to read the outputs:
class names, database class ids, task, image size and the input/output conventions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.errors import StudioError
from studio.ml.infer.predict import LoadedModel, load_model
from studio.ml.tasks import Task

FORMATS = ("torchscript", "onnx")


class _SingleImage(nn.Module):
    """Tensor in, tensors out, for tracing: image float [3, H, W] in [0, 1] ->
    detection: (boxes [N, 4] xyxy, labels [N], scores [N] (, masks [N, 1, H, W]));
    semantic: (label map [H, W],)."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model([image])[0]
        if self.task == Task.SEMANTIC_SEGMENTATION:
            return (out["sem_seg"],)
        keys = ["boxes", "labels", "scores"]
        if self.task == Task.INSTANCE_SEGMENTATION:
            keys.append("masks")
        return tuple(out[k] for k in keys)


def _output_names(task: str) -> list[str]:
    if task == Task.SEMANTIC_SEGMENTATION:
        return ["sem_seg"]
    names = ["boxes", "labels", "scores"]
    return names + ["masks"] if task == Task.INSTANCE_SEGMENTATION else names


def _example(lm: LoadedModel) -> torch.Tensor:
    s = lm.image_size or 320
    # 4:3, the commonest photo shape; values in [0, 1] as the model expects.
    return torch.rand(3, s, s * 4 // 3)


def _save_torchscript(lm: LoadedModel, out: Path) -> dict[str, Any]:
    errors = []
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript files are
        # what C++ (libtorch) and many deployment tools still load.
        warnings.simplefilter("ignore")
        try:
            scripted = torch.jit.script(lm.model)
            scripted.save(str(out))
            return {
                "method": "script",
                "call": "model([image]) -> (losses, detections): torchvision's scripted "
                "detection models return a (losses, list of dicts) pair",
            }
        except Exception as e:
            errors.append(f"script: {str(e).strip().splitlines()[0] if str(e) else e!r}")
        try:
            traced = torch.jit.trace(_SingleImage(lm.model, lm.task), (_example(lm),), strict=False)
            traced.save(str(out))
            return {
                "method": "trace",
                "call": "model(image float [3,H,W] in [0,1]) -> "
                + ", ".join(_output_names(lm.task)),
            }
        except Exception as e:
            errors.append(f"trace: {str(e).strip().splitlines()[0] if str(e) else e!r}")
    raise StudioError(
        f"{lm.config.model} cannot be exported to TorchScript ({'; '.join(errors)}); "
        "try --format onnx"
    )


def _save_onnx(lm: LoadedModel, out: Path) -> dict[str, Any]:
    if importlib.util.find_spec("onnx") is None:
        raise StudioError("ONNX export needs the onnx package: pip install onnx")
    wrapper = _SingleImage(lm.model, lm.task).eval()
    names = _output_names(lm.task)
    dynamic = {"image": {1: "height", 2: "width"}}
    dynamic.update({n: {0: "detections"} for n in names if n != "sem_seg"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The TorchScript-based exporter handles torchvision's detection ops (RoIAlign,
            # NMS) with opset 17; the dynamo exporter needs onnxscript as well.
            torch.onnx.export(
                wrapper,
                (_example(lm),),
                str(out),
                input_names=["image"],
                output_names=names,
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        raise StudioError(f"{lm.config.model} cannot be exported to ONNX: {first}") from e
    return {"method": "onnx", "call": "image float [3,H,W] in [0,1] -> " + ", ".join(names)}


def export_checkpoint(checkpoint: Path, fmt: str, out: Path) -> Path:
    """Export a checkpoint's model as `fmt` ("torchscript" | "onnx") to `out`, plus
    `metadata_path(out)` describing classes and conventions. Returns `out`.

    Raises StudioError for an unknown format, a missing `onnx` package, or a model that
    cannot be exported."""
    if fmt not in FORMATS:
        raise StudioError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise StudioError(f"{out}: is a folder; give the file to write the model to")
    if out.suffix.lower() == ".json":
        raise StudioError(
            f"{out}: a .json name is the model's description file; name the model itself "
            "(model.pt, model.onnx)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    lm = load_model(checkpoint, device="cpu")
    tmp = out.with_name(out.name + ".tmp")
    info = _save_torchscript(lm, tmp) if fmt == "torchscript" else _save_onnx(lm, tmp)
    os.replace(tmp, out)
    meta = {
        "format": fmt,
        **info,
        "model": lm.config.model,
        "task": lm.task,
        "image_size": lm.image_size,
        "class_names": lm.class_names,
        "class_ids": lm.category_ids,
        "labels": "label i (1-based) is class_names[i - 1]; 0 is background",
        "input": "RGB float32 [3, H, W], values in [0, 1]; the model resizes internally",
        "outputs": "boxes xyxy in input pixels, scores in [0, 1], masks probabilities",
        "checkpoint": str(checkpoint),
    }
    metadata_path(out).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return out


def metadata_path(out: Path) -> Path:
    """The description file beside an exported model: its name plus ".json"
    (model.onnx.json), so that two formats exported side by side keep their own."""
    return out.with_name(out.name + ".json")
