"""The static zoom-scale analysis: IDEAS.md's table, receptive fields, a project's objects,
and `studio analyze zoom` (run in-process: one torch import for all the cases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from studio.cli import main
from studio.core.importing import import_images
from studio.core.kinds import ShapeKind
from studio.core.project import Project
from studio.ml.analysis.zoom import (
    Level,
    backbone_receptive_fields,
    format_cells,
    format_pixels,
    format_table,
    parse_scales,
    zoom_table,
)
from studio.ml.analysis.zoom_advice import recommendation
from studio.ml.analysis.zoom_objects import InputResize, analyse_objects, object_sizes

FPN = [Level("P3", 8), Level("P4", 16), Level("P5", 32)]
FCOS = "composable_resnet18_fpn_fcos"

# IDEAS.md, "Feature grids and object size: the zoom-scale table", as printed there.
IDEAS_TABLE = """\
| zoom | image | box (px) | cells on P3/8 | on P4/16 | on P5/32 |
|---|---|---|---|---|---|
| 1.000 | 640 | 64 | 8 | 4 | 2 |
| 0.800 | 512 | 51.2 | 6.4 | 3.2 | 1.6 |
| 0.567 | 362 | 36.2 | 4.5 | 2.3 | 1.1 |
| 0.400 | 256 | 25.6 | 3.2 | 1.6 | 0.8 (below one cell) |
| 0.280 | 179 | 17.9 | 2.2 | 1.1 | 0.56 (below one cell) |"""


def test_the_ideas_table_exactly() -> None:
    rows = zoom_table(64, 640, FPN)
    printed = [
        (row.image, format_pixels(row.box), [format_cells(c) for c in row.cells.values()])
        for row in rows
    ]
    assert printed == [
        (640, "64", ["8", "4", "2"]),
        (512, "51.2", ["6.4", "3.2", "1.6"]),
        (362, "36.2", ["4.5", "2.3", "1.1"]),
        (256, "25.6", ["3.2", "1.6", "0.8"]),
        (179, "17.9", ["2.2", "1.1", "0.56"]),
    ]
    assert [row.below_one for row in rows] == [(), (), (), ("P5",), ("P5",)]
    assert "\n".join(format_table(rows, FPN)) == IDEAS_TABLE


def test_zoomed_side_is_whole_pixels_even_when_the_product_rounds_down() -> None:
    # 640 * 0.7 is 447.99999999999994 in floating point; the image is 448 px.
    assert zoom_table(64, 640, FPN, (0.7,))[0].image == 448


@pytest.mark.parametrize(
    "text, message",
    [("1,x", "'x' is not a number"), ("1,0", "outside (0, 1]"), ("1.5", "outside (0, 1]")],
)
def test_bad_scales_name_the_value(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        parse_scales(text)
    assert parse_scales("1, 0.5") == (1.0, 0.5)


def test_resnet_receptive_fields_by_the_recurrence() -> None:
    assert backbone_receptive_fields("resnet18") == {4: 43, 8: 99, 16: 211, 32: 435}
    assert backbone_receptive_fields("resnet34") == {4: 59, 8: 179, 16: 547, 32: 899}
    assert backbone_receptive_fields("resnet50") == {4: 35, 8: 91, 16: 267, 32: 427}
    assert backbone_receptive_fields("mobilenet_v3_large") == {}


def test_resnet18_receptive_field_matches_input_gradients() -> None:
    """Every input pixel that can move the centre cell of C5: with positive weights and
    inputs nothing cancels, and average pooling in place of max pooling passes gradient to
    its whole window, so the non-zero gradient spans exactly the theoretical field."""
    import torch
    from torchvision.models import resnet18

    net = resnet18().eval()
    net.maxpool = torch.nn.AvgPool2d(3, 2, 1)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.weight, 0.01)
    x = torch.ones(1, 3, 512, 512, requires_grad=True)
    body = torch.nn.Sequential(*list(net.children())[:-2])
    out = body(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    rows = (x.grad[0].abs().sum(0).sum(1) > 0).nonzero()
    assert int(rows.max() - rows.min() + 1) == backbone_receptive_fields("resnet18")[32]


def test_input_resize_of_min_max_and_fixed() -> None:
    assert InputResize(min_size=640, max_size=640).scales(1280, 640) == (0.5, 0.5)
    assert InputResize(min_size=800, max_size=1333).scales(400, 300) == (800 / 300, 800 / 300)
    assert InputResize(fixed=320).scales(640, 160) == (0.5, 2.0)
    assert InputResize.from_dict({"fixed": 320}).square_side == 320


# --- a project with known boxes -------------------------------------------------------------


def _image(path: Path, w: int, h: int) -> Path:
    Image.new("RGB", (w, h), (90, 90, 90)).save(path)
    return path


def known_project(folder: Path) -> Project:
    """Two images: 640x640 (scale 1 at a 640 input) and 1280x640 (scale 0.5).

    Object sizes at the input (sqrt of box area): small 4, 12, 16 (an 8x32 box), 12 (24 px
    at scale 0.5); big 64, 64 (128 px at scale 0.5).
    """
    project = Project.create(folder / "proj")
    a = _image(folder / "a.png", 640, 640)
    b = _image(folder / "b.png", 1280, 640)
    import_images(project, [a, b])
    ids = {im.name: im.id for im in project.images()}
    small, big = project.add_class("small"), project.add_class("big")
    boxes = [
        ("a.png", small, (10, 10, 4, 4)),
        ("a.png", small, (100, 100, 12, 12)),
        ("a.png", small, (200, 200, 8, 32)),
        ("a.png", big, (300, 300, 64, 64)),
        ("b.png", small, (10, 10, 24, 24)),
        ("b.png", big, (500, 100, 128, 128)),
    ]
    for name, cls, bbox in boxes:
        project.add_annotation(ids[name], cls, ShapeKind.BOX, bbox=bbox)
    return project


def test_project_shares_below_one_and_two_cells(tmp_path: Path) -> None:
    with known_project(tmp_path) as project:
        objects = object_sizes(project, InputResize(min_size=640, max_size=640))
    assert sorted(o.size for o in objects) == [4, 12, 12, 16, 64, 64]
    a = analyse_objects(objects, FPN, (1.0, 0.5))
    # P3 cells 0.5, 1.5, 1.5, 2, 8, 8; P4 half of those; P5 a quarter.
    shares = {name: (s.below_1, s.below_2) for name, s in a.levels.items()}
    assert shares == {"P3": (1 / 6, 3 / 6), "P4": (3 / 6, 4 / 6), "P5": (4 / 6, 4 / 6)}
    assert a.levels["P3"].histogram == [0, 1, 2, 1, 0, 2, 0]
    assert a.by_zoom[1][0] == 0.5 and a.by_zoom[1][1]["P3"].below_1 == 3 / 6
    count, small = a.classes["small"]
    assert count == 4 and small["P3"].below_1 == 1 / 4 and small["P5"].below_1 == 1.0
    assert a.classes["big"][1]["P5"].below_1 == 0.0

    text = recommendation(a, FPN, 640)
    assert "17% of your 6 objects cover less than one cell on P3/8 and 67% on P5/32" in text
    # The 10th-percentile object (4 px) needs 8 px to cover a P3 cell: twice the input.
    assert "raise the input size to 1280" in text and "P2/4" in text and "tiles" in text


def test_recommendation_for_large_objects_and_for_none(tmp_path: Path) -> None:
    with known_project(tmp_path) as project:
        objects = [o for o in object_sizes(project, InputResize(fixed=640)) if o.size >= 60]
    a = analyse_objects(objects, FPN, (1.0, 0.1))
    text = recommendation(a, FPN, 640)
    assert "0% of your 2 objects" in text and "suits your objects" in text
    # Fixed 640x640 input: the 128-px box of the 1280x640 image is 64x128 px, size 90.5; at
    # zoom 0.1 it covers 1.13 P3 cells, the 64-px box 0.8.
    assert "Zoomed out to 0.1, 50% fall below one cell" in text
    assert "no labelled objects" in recommendation(analyse_objects([], FPN, (1.0,)), FPN, 640)


# --- the command line -----------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    rc = main(["analyze", "zoom", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_box_table_as_text_is_the_ideas_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "--box", 64, "--model", FCOS)
    assert rc == 0, err
    assert IDEAS_TABLE in out
    assert "P3/8 99 px" in out  # the resnet18 backbone's receptive field


def test_box_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "--box", 64, "--model", FCOS, "--scales", "1,0.4", "--json")
    assert rc == 0, err
    data = json.loads(out)
    # effective_field is measured (or null without a cached measurement): not compared here.
    keys = ("name", "stride", "receptive_field")
    assert [{k: lv[k] for k in keys} for lv in data["levels"]] == [
        {"name": "P3", "stride": 8, "receptive_field": 99},
        {"name": "P4", "stride": 16, "receptive_field": 211},
        {"name": "P5", "stride": 32, "receptive_field": 435},
    ]
    assert [set(r) >= {"zoom", "image", "box", "cells"} for r in data["rows"]] == [True, True]
    assert data["rows"][1] == {
        "zoom": 0.4,
        "image": 256,
        "box": 25.6,
        "cells": {"P3": 3.2, "P4": 1.6, "P5": 0.8},
        "below_one": ["P5"],
    }
    assert "objects" not in data


def test_box_with_the_default_detector_and_image_size(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "--box", 64, "--image-size", 512, "--json")
    assert rc == 0, err
    data = json.loads(out)
    from studio.ml.analysis.zoom_model import default_detector
    from studio.ml.run.recipe import CPU_DETECTOR
    from studio.ml.train.device import auto_device

    assert data["model"] == default_detector()
    assert data["image_size"] == 512 and data["rows"][0]["image"] == 512
    if auto_device() == "cpu":  # the one-click CPU detector: P3-P5, IDEAS.md's grids
        assert data["model"] == CPU_DETECTOR
        assert [lv["stride"] for lv in data["levels"]] == [8, 16, 32]
        assert data["rows"][0]["cells"] == {"P3": 8.0, "P4": 4.0, "P5": 2.0}


def test_project_json_has_objects_and_a_recommendation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known_project(tmp_path).close()
    rc, out, err = _run(capsys, tmp_path / "proj", "--model", FCOS, "--json")
    assert rc == 0, err
    data = json.loads(out)
    objects = data["objects"]
    assert objects["count"] == 6 and len(objects["bins"]) == 7
    assert objects["levels"]["P4"]["below_1"] == 0.5
    assert objects["levels"]["P3"]["below_2"] == 0.5
    assert objects["levels"]["P3"]["histogram"] == [0, 1, 2, 1, 0, 2, 0]
    assert objects["classes"]["small"]["count"] == 4
    assert [z["zoom"] for z in objects["by_zoom"]] == [1.0, 0.8, 0.567, 0.4, 0.28]
    assert data["box"] == 16  # the median object: sizes 4, 12, 12, 16, 64, 64
    assert "raise the input size to 1280" in data["recommendation"]


def test_project_text_and_a_runs_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with known_project(tmp_path) as project:
        config = {"model": FCOS, "image_size": 320, "model_options": {"backbone": "resnet50"}}
        run = project.create_run("small-input", FCOS, "detection", config)
    rc, out, err = _run(capsys, tmp_path / "proj", "--run", run.id)
    assert rc == 0, err
    assert "model composable_resnet18_fpn_fcos, input 320 on the longer side" in out
    assert "P3/8 91 px" in out  # the run's resnet50 backbone
    assert "| 1.000 | 320 | 8 | 1 | 0.5 (below one cell) | 0.25 (below one cell) |" in out
    assert "6 objects: share below one cell" in out and "At input 320," in out


def test_a_run_whose_size_studio_chose_is_analysed_at_that_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One click leaves image_size None in the run's config (Studio picks it when training
    starts) and records the size in the checkpoint: the analysis (its table, and the AP
    measured at each zoom) used the model's default (640) for a detector trained at 352."""
    import torch

    from studio.ml.analysis.zoom_model import run_model_input
    from studio.ml.models import get_spec
    from studio.ml.models.registry import resize_for

    with known_project(tmp_path) as project:
        config = {"model": FCOS, "image_size": None, "model_options": {}}
        run = project.create_run("auto-size", FCOS, "detection", config)
    rc, out, err = _run(capsys, tmp_path / "proj", "--run", run.id)
    assert rc == 0, err
    assert "input 640 on the longer side" in out  # no checkpoint yet: the model's default
    torch.save({"model": {}, "image_size": 352}, run.dir / "best.pt")
    with Project.open(tmp_path / "proj") as project:
        chosen = run_model_input(project, str(run.id))
        assert chosen.image_size == 352
        assert chosen.resize == InputResize.from_dict(resize_for(get_spec(FCOS), 352))
        assert run_model_input(project, str(run.id), 480).image_size == 480  # asked for
    # A damaged checkpoint is said, not analysed at the default size as if it were none.
    (run.dir / "best.pt").write_bytes(b"PK\x03\x04 half a zip")
    rc, out, err = _run(capsys, tmp_path / "proj", "--run", run.id)
    assert rc == 2 and "not a readable checkpoint" in err and "input 640" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--box", "64", "--scales", "1,abc"], "--scales: zoom scale 'abc' is not a number"),
        (["--box", "64", "--scales", "1,2"], "--scales: zoom scale 2 is outside (0, 1]"),
        (["--box", "0"], "--box must be a positive number"),
        ([], "give a project folder, or --box PIXELS"),
        (["--box", "64", "--run", "1"], "--run needs the project folder"),
        (["--box", "64", "--model", "nope"], "unknown model 'nope'"),
    ],
)
def test_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc, out, err = _run(capsys, *args)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: "), err
    assert message in lines[0]
