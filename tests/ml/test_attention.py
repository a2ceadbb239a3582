"""Attention modules (SE, ECA, CBAM): sizes, parameter counts, the composable detector with
each, `studio models --describe --attention`, their layers and the attention entropy."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from studio.ml.analysis.attention_entropy import (
    attention_entropies,
    attention_entropy,
    format_entropies,
)
from studio.ml.analysis.cam import CamMethod, CamRequest, activation_map
from studio.ml.analysis.cam_layers import LayerGroup, find_layer, list_layers
from studio.ml.models import build_model
from studio.ml.models.attention import ATTENTIONS, CBAM, ECA, SE, eca_kernel_size
from studio.ml.models.composable import ComposableError
from studio.ml.run.options import COMPOSABLE_CHOICES, add_train_arguments, settings_from_args

# A light composable detector: small backbone, narrow neck, one-conv FCOS tower.
LIGHT = "composable_mobilenet_v3_small_fpn_fcos"
LIGHT_OPTIONS = {"neck_channels": 32, "head_convs": 1}


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("cls", [SE, ECA, CBAM])
def test_modules_keep_the_shape_and_their_last_weights(cls):
    x = torch.rand(2, 64, 10, 12, requires_grad=True)
    m = cls(64)
    assert m.last_attention is None
    y = m(x)
    assert y.shape == x.shape
    w = m.last_attention
    assert w.channel.shape == (2, 64) and not w.channel.requires_grad
    assert ((w.channel > 0) & (w.channel < 1)).all()
    if cls is CBAM:
        assert w.spatial.shape == (2, 1, 10, 12) and not w.spatial.requires_grad
    else:
        assert w.spatial is None
    y.sum().backward()  # the stored weights do not cut the graph
    assert x.grad is not None


def test_parameter_counts_match_the_formulas():
    c = 128  # reduction 16: hidden 8
    assert _params(SE(c)) == (c * 8 + 8) + (8 * c + c) == 2184
    assert eca_kernel_size(128) == 5 and eca_kernel_size(64) == 3 and eca_kernel_size(512) == 5
    assert _params(ECA(c)) == 5
    assert _params(CBAM(c)) == 2184 + 2 * 7 * 7 == 2282


def test_entropy_of_uniform_and_one_hot_maps():
    assert attention_entropy(torch.full((3, 1, 8, 10), 0.7)) == pytest.approx(math.log(80))
    one_hot = torch.zeros(2, 1, 8, 10)
    one_hot[:, 0, 3, 4] = 0.9
    assert attention_entropy(one_hot) == pytest.approx(0.0, abs=1e-12)
    assert attention_entropy(torch.full((1, 16), 0.5)) == pytest.approx(math.log(16))


@pytest.mark.parametrize("attention", ["se", "eca", "cbam"])
def test_composable_detector_trains_one_step_with_attention(attention, one_image_batch):
    torch.manual_seed(0)
    built = build_model(LIGHT, 2, image_size=96, attention=attention, **LIGHT_OPTIONS)
    model = built.model.train()
    modules = model.backbone.attention
    assert list(modules) == ["P3", "P4", "P5"]
    assert all(type(m).__name__ == attention.upper() for m in modules.values())
    images, targets = one_image_batch
    loss = sum(model(images, targets).values())
    loss.backward()
    assert math.isfinite(loss.item())
    grads = [p.grad for m in modules.values() for p in m.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    entries = attention_entropies(model)
    assert [e.level for e in entries] == ["P3", "P4", "P5"]
    assert all(0 < e.entropy <= e.max_entropy + 1e-9 for e in entries)


@pytest.fixture
def one_image_batch():
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 96, 96, generator=g)]
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 50.0, 60.0]]), "labels": torch.tensor([1])}]
    return images, targets


def test_no_attention_adds_nothing_and_bad_kind_is_one_line():
    model = build_model(LIGHT, 2, image_size=96, **LIGHT_OPTIONS).model
    assert model.backbone.attention is None
    assert not any("attention" in k for k in model.state_dict())
    with pytest.raises(ComposableError, match="unknown attention 'sa'"):
        build_model(LIGHT, 2, image_size=96, attention="sa", **LIGHT_OPTIONS)


def test_train_option_reaches_the_model_options():
    assert COMPOSABLE_CHOICES["attention"] == ATTENTIONS
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    settings = settings_from_args(p.parse_args(["--attention", "eca"]))
    assert settings["model"] == "composable"
    assert settings["model_options"] == {"attention": "eca"}
    with pytest.raises(SystemExit):
        p.parse_args(["--attention", "sa"])


def test_attention_layers_show_the_spatial_map_and_the_channel_weighted_mean():
    torch.manual_seed(0)
    model = build_model(LIGHT, 2, image_size=96, attention="cbam", **LIGHT_OPTIONS).model.eval()
    layers = list_layers(model, (96, 96))
    att = [lv for lv in layers if lv.group == LayerGroup.ATTENTION]
    assert [(lv.id, lv.stride, lv.channels) for lv in att] == [
        ("neck.attention@P3", 8, 1),
        ("neck.attention@P4", 16, 1),
        ("neck.attention@P5", 32, 1),
    ]
    assert att[0].module == "backbone.attention.P3.spatial"
    image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    layer = find_layer(layers, "neck.attention@P3")
    amap = activation_map(model, image, (96, 96), layer, CamRequest(CamMethod.FEATURES))
    spatial = model.backbone.attention["P3"].last_attention.spatial[0, 0]
    # The shown map is CBAM's own spatial map, min-max scaled.
    expected = (spatial - spatial.min()) / (spatial.max() - spatial.min())
    assert amap.cells.shape == (12, 12)
    np.testing.assert_allclose(amap.cells, expected.numpy(), atol=1e-5)
    line = format_entropies(attention_entropies(model))
    assert "CBAM spatial" in line and "P3" in line and "P5" in line

    se = build_model(LIGHT, 2, image_size=96, attention="se", **LIGHT_OPTIONS).model.eval()
    layer = find_layer(list_layers(se, (96, 96)), "neck.attention@P4")
    assert layer.module == "backbone.attention.P4" and layer.channels == 32


def test_describe_lists_the_attention_modules_with_params():
    from studio.ml.models import describe_model, format_description

    parts = describe_model("composable_resnet18_fpn_fcos", image_size=128, attention="cbam")
    by_name = {p.name: p for p in parts}
    assert list(by_name) == ["backbone", "neck", "CBAM@P3", "CBAM@P4", "CBAM@P5", "head"]
    assert all(by_name[f"CBAM@{lv}"].params == 2282 for lv in ("P3", "P4", "P5"))
    assert by_name["CBAM@P3"].strides == {"out": 8} and by_name["CBAM@P3"].gflops > 0
    text = format_description(parts)
    assert "CBAM@P3" in text and "0.002282" in text


def test_cli_describe_with_attention(capsys):
    from studio.cli import main

    assert main(["models", "--describe", LIGHT, "--image-size", "96", "--attention", "se"]) == 0
    assert "SE@P3" in capsys.readouterr().out


def _attention_run(folder):
    """A project of one noise image and one untrained CBAM run (its checkpoint written
    directly: the panel only needs weights to load)."""
    from PIL import Image

    from studio.core.importing import import_images
    from studio.core.kinds import ShapeKind
    from studio.core.project import Project
    from studio.ml.run.runs import create_run
    from studio.ml.train.checkpoint import save_checkpoint
    from studio.ml.train.config import TrainConfig

    (folder / "images").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "images" / "noise.png")
    project = Project.create(folder)
    import_images(project, [folder / "images"])
    cid = project.add_class("thing")
    image = project.images()[0]
    project.add_annotation(image.id, cid, ShapeKind.BOX, bbox=(10, 10, 30, 30))
    cfg = TrainConfig(model=LIGHT, task="detection", weights="none", backbone_weights="none",
                      image_size=96, device="cpu", workers=0,
                      model_options={"attention": "cbam", **LIGHT_OPTIONS})  # fmt: skip
    run = create_run(project, cfg)
    model = build_model(LIGHT, 1, image_size=96, attention="cbam", **LIGHT_OPTIONS).model
    state = {"model": model.state_dict(), "config": cfg.to_dict(), "class_names": ["thing"],
             "category_ids": [cid], "task": "detection", "image_size": 96}  # fmt: skip
    save_checkpoint(state, run.dir / "last.pt")
    return project, image


def test_panel_shows_the_attention_entropy_per_level(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from studio.ui.analysis.cam_panel import CamPanel

    project, image = _attention_run(tmp_path / "proj")
    panel = CamPanel()
    qtbot.addWidget(panel)
    try:
        panel.set_project(project)
        qtbot.waitUntil(lambda: panel.layers is not None, timeout=60_000)
        assert "neck.attention@P3" in [row.id for row in panel.layers.layers]
        assert panel.attention.text().startswith("Show an image")
        panel.show_image(image.id)
        qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
        qtbot.waitUntil(lambda: "nats" in panel.attention.text(), timeout=10_000)
        text = panel.attention.text()
        assert "CBAM spatial" in text and "noise.png" in text
        # One entropy per level, each below the uniform maximum log(cells).
        for level in ("P3", "P4", "P5"):
            assert f"{level} " in text
        assert "no attention modules" not in text
    finally:
        panel.shutdown()
        project.close()
