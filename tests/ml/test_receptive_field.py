"""Measured receptive fields (input gradients) and how `studio analyze zoom` shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.ml.analysis.receptive_field import cached_fields, effective_side, measure_fields
from studio.ml.analysis.zoom import backbone_receptive_fields

MOBILE = "composable_mobilenet_v3_pan_fcos"


def test_resnet18_measured_field_equals_the_recurrence() -> None:
    fields = {f.layer: f for f in measure_fields("composable_resnet18_fpn_fcos")}
    c5 = fields["backbone.body.layer4"]
    assert (c5.stride, c5.theoretical, c5.clipped) == (32, 435, False)
    assert c5.theoretical == backbone_receptive_fields("resnet18")[32]
    assert 0 < c5.effective < c5.theoretical
    assert cached_fields("composable_resnet18_fpn_fcos") is not None  # in the sandbox cache


def test_effective_side_of_a_centred_block() -> None:
    import torch

    grad = torch.zeros(9, 9)
    grad[3:6, 3:6] = 1.0  # all the mass in the 3x3 square around (4, 4)
    assert effective_side(grad, (4.0, 4.0)) == 3


def test_mobilenet_zoom_json_has_both_fields_per_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from studio.core.project import Project

    Project.create(tmp_path / "p").close()
    rc = main(["analyze", "zoom", str(tmp_path / "p"), "--model", MOBILE, "--box", "64", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    levels = json.loads(out)["levels"]
    assert [lv["name"] for lv in levels] == ["P3", "P4", "P5"]
    for lv in levels:
        assert lv["receptive_field"] and lv["effective_field"], lv
        assert lv["effective_field"] <= lv["receptive_field"]
