"""Loading weights: torchvision's pretrained files (through its weights API and hub cache) and
local files, always with `torch.load(weights_only=True)` so a weights file cannot run code."""

from __future__ import annotations

import http.client
import os
import pickletools
import re
import shutil
import urllib.error
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.hub
from torch import nn
from torchvision.models import WeightsEnum, get_model_weights
from torchvision.ops import FrozenBatchNorm2d

from studio.core.errors import StudioError

# Values of the `weights` argument that are not file paths.
NO_WEIGHTS = "none"
DEFAULT_WEIGHTS = "default"
# Synonyms accepted for `backbone_weights`.
BACKBONE_PRETRAINED = ("imagenet", "default")

# How many key names a warning lists before it says "and N more".
_MAX_KEYS_SHOWN = 6


class WeightsError(StudioError):
    """A weights file cannot be used: missing, unreadable, unsafe or for another model."""


class WeightsUnavailable(WeightsError):
    """Pretrained weights are neither in a weights folder, torchvision's cache nor
    downloadable (e.g. offline). `filename` is the file's published name."""

    def __init__(self, message: str, filename: str = ""):
        super().__init__(message)
        self.filename = filename


# Folders searched for torchvision's files by their published names before torch's cache:
# the environment's (an offline lab copies the files there once), then those the running
# program set (a project's "weights folder" setting, see `set_weights_dirs`).
WEIGHTS_DIR_ENV = "STUDIO_WEIGHTS_DIR"
_set_dirs: list[Path] = []


def set_weights_dirs(dirs: Iterable[str | os.PathLike[str]]) -> None:
    """Folders (besides $STUDIO_WEIGHTS_DIR) to search for pretrained files in this process."""
    _set_dirs[:] = [Path(d).expanduser() for d in dirs if str(d).strip()]


def weights_dirs() -> list[Path]:
    """The folders searched for torchvision's files, in order: those set by
    `set_weights_dirs` (the project's setting), then $STUDIO_WEIGHTS_DIR (os.pathsep-separated)."""
    env = [Path(d).expanduser() for d in os.environ.get(WEIGHTS_DIR_ENV, "").split(os.pathsep)]
    return [*_set_dirs, *(d for d in env if str(d) not in ("", "."))]


def published_name(weights: WeightsEnum) -> str:
    """torchvision's file name for `weights`, e.g. "mobilenet_v2-b0353104.pth"."""
    return os.path.basename(urlparse(weights.url).path)


def locate(weights: WeightsEnum) -> Path | None:
    """Where the file for `weights` is on this machine: a weights folder first, then
    torch's hub cache; None when in neither."""
    name = published_name(weights)
    for folder in weights_dirs():
        if (folder / name).is_file():
            return folder / name
    cached = cache_path(weights)
    return cached if cached.is_file() else None


def _link_into_cache(found: Path, cached: Path) -> None:
    """torchvision's builders read the hub cache only: make the weights folder's file
    appear there (a symbolic link; a copy where links are not possible)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    if cached.is_symlink():  # a link to a file since deleted
        cached.unlink()
    try:
        cached.symlink_to(found.resolve())
    except OSError:
        shutil.copyfile(found, cached)


@dataclass
class LoadedWeights:
    """What a weights file held: a state dict, plus the class names of a Studio checkpoint."""

    state_dict: dict[str, torch.Tensor]
    class_names: list[str] | None = None


def is_path_like(weights: str | os.PathLike[str]) -> bool:
    """True when `weights` names a file rather than "none" or "default"."""
    return str(weights).strip().lower() not in (NO_WEIGHTS, DEFAULT_WEIGHTS)


def cache_path(weights: WeightsEnum) -> Path:
    """Where torch.hub keeps the file for `weights` (under $TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / published_name(weights)


def ensure_cached(weights: WeightsEnum, what: str) -> Path:
    """Make sure torchvision's file for `weights` is in the hub cache: taken from a weights
    folder (`weights_dirs`) when it is there, else downloaded.

    Returns the cached file's path. Raises WeightsUnavailable when it is missing and the download
    fails, and WeightsError when the file is unreadable or unsafe. `what` names the model in
    messages.
    """
    path = cache_path(weights)
    found = locate(weights)
    if found is not None and found != path:
        read_weights_file(found)  # refuse a tampered file before torchvision reads it
        try:
            _link_into_cache(found, path)
        except OSError as exc:
            raise WeightsUnavailable(
                f"{found}: cannot make it available in torch's cache {path.parent}: "
                f"{exc.strerror or exc}",
                path.name,
            ) from exc
        return path
    if not path.is_file():
        match = re.search(r"-([a-f0-9]*)\.", path.name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Looked up at call time so tests can replace the download.
            torch.hub.download_url_to_file(
                weights.url,
                str(path),
                hash_prefix=match.group(1) if match else None,
                progress=False,
            )
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise WeightsUnavailable(
                f"Pretrained weights for {what} ({path.name}) are neither in a weights folder "
                f"nor in the cache ({path.parent}) and cannot be downloaded: {reason}",
                path.name,
            ) from exc
    # torchvision's builders later read this file with weights_only=False; reading it once with
    # weights_only=True first means a tampered cache file is refused instead of executed.
    try:
        read_weights_file(path)
    except WeightsError as exc:
        raise WeightsError(f"{exc} Delete it to have it downloaded again.") from exc
    return path


def published_files(arch: str) -> list[WeightsEnum]:
    """torchvision's weights for the builder `arch`: DEFAULT first, then its other files
    (e.g. mobilenet_v2's IMAGENET1K_V2, then IMAGENET1K_V1)."""
    try:
        enum = get_model_weights(arch)
    except (ValueError, KeyError, AttributeError) as exc:
        raise WeightsError(f"torchvision has no pretrained weights for {arch}") from exc
    default = enum.DEFAULT
    return [default, *(w for w in enum if w is not default)]


def default_weights(arch: str) -> WeightsEnum:
    """torchvision's weights for the builder named `arch`, e.g. "resnet50": its DEFAULT
    ones, or another of its published files where only that one is on this machine (an
    offline lab may have copied mobilenet_v2-b0353104.pth, IMAGENET1K_V1, rather than the
    DEFAULT V2)."""
    files = published_files(arch)
    return next((w for w in files if locate(w) is not None), files[0])


def _unpickler_detail(message: str) -> str:
    """The useful line of torch's long weights-only refusal message."""
    found = re.search(
        r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|Check the documentation|$)", message, re.S
    )
    return " ".join(found.group(1).split()) if found else message.splitlines()[0]


def _reason(exc: Exception) -> str:
    """A few words on why torch.load failed: its first sentence, with the exception type when
    the message alone means nothing (KeyError: 101, EOFError)."""
    message = _unpickler_detail(str(exc)) if str(exc) else ""
    first = message.split(". ")[0].rstrip(".")
    return first if len(first.split()) >= 3 else f"{type(exc).__name__}: {first}".rstrip(": ")


# Pickle opcodes that import or call Python objects: what makes a pickle able to run code.
_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}


def _pickled_code(path: Path, message: str) -> str | None:
    """For a file the weights-only unpickler refused: what Python object its pickle imports
    (e.g. "posix.system"), or None when it is damaged bytes rather than a well-formed pickle
    with code in it (the unpickler refuses both)."""
    named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    if named:
        return named.group(1)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                data = archive.read(name)
        else:
            data = path.read_bytes()
        # genops only decodes opcodes; it never imports or calls anything.
        ops = list(pickletools.genops(data))
    except Exception:
        return None
    strings: list[str] = []
    for op, arg, _pos in ops:
        if isinstance(arg, str):
            strings.append(arg)
        if op.name in ("GLOBAL", "INST"):
            return str(arg).replace(" ", ".")
        if op.name == "STACK_GLOBAL" and len(strings) >= 2:
            return ".".join(strings[-2:])
    if any(op.name in _CODE_OPCODES for op, _arg, _pos in ops):
        return "Python objects"
    return None


def read_weights_file(path: str | os.PathLike[str]) -> LoadedWeights:
    """Read a plain state dict or a Studio checkpoint ({"model": state_dict, "class_names": [...]})
    from `path`, refusing pickled code.

    Raises WeightsError naming the path when the file is missing, unreadable, unsafe or holds no
    state dict.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file (use 'default', 'none' or a file path)")
    if not path.is_file():
        raise WeightsError(f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols before refusing such files; the error says it all.
            warnings.filterwarnings(
                "ignore", message="Detected pickle protocol", category=UserWarning
            )
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(load_failure(path, exc)) from exc
    return _extract_state_dict(path, obj)


def load_failure(path: Path, exc: Exception, what: str = "PyTorch weights file") -> str:
    """Why `torch.load(path, weights_only=True)` raised `exc`, naming the path: pickled
    code it refused (and what it imports), or a damaged file or one of another kind. Never
    torch's advice to retry with weights_only=False, which would run the file's code."""
    # torch.load signals a damaged file with many exception types (RuntimeError from the zip
    # reader, EOFError, KeyError, UnpicklingError...); the weights-only refusal is the one case
    # with its own message.
    message = str(exc)
    code = _pickled_code(path, message) if "Weights only load failed" in message else None
    if code:
        return (
            f"{path}: refused to load: the file contains pickled Python code, which could run "
            f"arbitrary code (it uses {code}). Studio only loads tensors: re-save the weights "
            "as a plain state dict with torch.save(model.state_dict(), path)."
        )
    if "Weights only load failed" in message:  # not a pickle at all: bytes of another kind
        return f"{path}: not a readable {what} (damaged, or another kind of file)"
    return f"{path}: not a readable {what} ({_reason(exc)})"


def _extract_state_dict(path: Path, obj: object) -> LoadedWeights:
    class_names = None
    state = obj
    if isinstance(obj, Mapping):
        # Studio checkpoints use "model"; other trainers commonly use these.
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                state = obj[key]
                names = obj.get("class_names")
                if isinstance(names, list | tuple):
                    class_names = [str(n) for n in names]
                break
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(f"{path}: holds no state dict (expected a dict of tensors)")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{path}: holds no tensors")
    return LoadedWeights(tensors, class_names)


def _align_prefixes(
    state: Mapping[str, torch.Tensor], own_keys: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Rename keys so they line up with the model's: files from DataParallel carry "module.",
    and Studio's semantic wrapper keeps torchvision's network under "net."."""
    own = set(own_keys)
    candidates = [dict(state)]
    for strip in ("module.", "net."):
        if any(k.startswith(strip) for k in state):
            candidates.append({k.removeprefix(strip): v for k, v in state.items()})
    candidates += [{"net." + k: v for k, v in c.items()} for c in list(candidates)]
    return max(candidates, key=lambda c: len(own.intersection(c)))


def _list_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    more = len(keys) - _MAX_KEYS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def load_matching(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> list[str]:
    """Copy every tensor of `state` whose name and shape match `model`; leave the rest as built.

    Tensors whose shape differs (a head for another class count) keep the model's fresh random
    init. Returns warnings saying what was skipped. Raises WeightsError when nothing matches.
    """
    own = model.state_dict()
    state = _align_prefixes(state, own.keys())
    loadable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    reshaped = [k for k in state if k in own and own[k].shape != state[k].shape]
    unexpected = [k for k in state if k not in own]
    # BatchNorm's counter is absent from FrozenBatchNorm2d files and is meaningless to copy.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if not loadable:
        raise WeightsError(
            f"{source}: none of its {len(state)} tensors fit this model; it was saved from "
            "a different architecture"
        )
    model.load_state_dict(loadable, strict=False)
    warnings = []
    if reshaped:
        warnings.append(
            f"{source}: re-initialised {len(reshaped)} tensors whose shape differs from the file "
            f"(e.g. a different class count): {_list_keys(reshaped)}"
        )
    if missing:
        warnings.append(
            f"{source}: {len(missing)} tensors not in the file keep their random init: {_list_keys(missing)}"
        )
    if unexpected:
        warnings.append(
            f"{source}: ignored {len(unexpected)} tensors the model does not have: {_list_keys(unexpected)}"
        )
    return warnings


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in `module` (in place) by FrozenBatchNorm2d with the same
    statistics, as torchvision does for pretrained detection backbones: batches of a few images
    would otherwise wreck the pretrained statistics. Returns `module`."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                if child.affine:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                if child.track_running_stats:
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module
