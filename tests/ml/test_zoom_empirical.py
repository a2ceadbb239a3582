"""The empirical zoom-scale analysis: a run's AP measured on zoomed-out validation images,
and its place in `studio analyze zoom --run`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from studio.cli import main
from studio.core.errors import Cancelled
from studio.core.progress import Progress
from studio.ml.analysis.zoom_empirical import empirical_zoom, zoom_canvas
from tests.ml.test_cam import planted_run


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return planted_run(tmp_path_factory.getbasetemp())


def test_zoom_canvas_shrinks_the_content_and_keeps_the_size() -> None:
    image = torch.zeros(3, 100, 50)
    image[:, 50:, :] = 1.0  # bottom half white
    canvas, fx, fy = zoom_canvas(image, 0.4)
    assert canvas.shape == (3, 100, 50) and (fx, fy) == (20 / 50, 40 / 100)
    assert canvas[0, 25:40, :20].mean() > 0.95 and canvas[0, :15, :20].mean() < 0.05
    assert torch.allclose(canvas[:, 45:, 25:], torch.full((3, 55, 25), 0.5))  # mean colour
    assert zoom_canvas(image, 1.0)[0] is image


@pytest.mark.slow
def test_ap_of_a_trained_model_falls_as_the_scene_is_zoomed_out(planted: Path) -> None:
    seen, steps = [], []
    progress = Progress(lambda done, total, text: steps.append((done, total)))
    results = empirical_zoom(planted, 1, device="cpu", progress=progress, on_scale=seen.append)
    assert [r.zoom for r in results] == [1.0, 0.8, 0.567, 0.4, 0.28] and seen == results
    assert steps[-1] == (30, 30)  # 6 validation images x 5 scales
    ap50 = [r.metrics["all"].ap50 for r in results]
    recall = [r.metrics["all"].recall for r in results]
    print("AP50 by zoom", [round(v, 3) for v in ap50], "recall", recall)
    assert ap50[0] >= 0.5, "the model learned the squares at zoom 1"
    assert ap50[-1] < 0.5 * ap50[0] and recall[-1] < recall[0]
    assert ap50[-1] <= ap50[2] <= max(ap50[:2])
    # Squares of 24-39 px at the 96-px input: medium at zoom 1, all small by zoom 0.8.
    assert results[0].objects["all"] == 6 and results[-1].objects["small"] == 6
    assert results[-1].metrics["large"].ap == -1  # no large objects: undefined, as in COCO


@pytest.mark.slow
def test_cancel_stops_at_the_next_image(planted: Path) -> None:
    progress = Progress()
    seen = []

    def stop_after_first(result) -> None:
        seen.append(result)
        progress.cancel()

    with pytest.raises(Cancelled):
        empirical_zoom(planted, 1, device="cpu", progress=progress, on_scale=stop_after_first)
    assert len(seen) == 1


@pytest.mark.slow
def test_cli_adds_the_measured_table_json_and_csv(
    planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "zoom.csv"
    rc = main(["analyze", "zoom", str(planted), "--run", "1", "--scales", "1,0.28",
               "--json", "--csv", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    assert [e["zoom"] for e in data["empirical"]] == [1.0, 0.28]
    first = data["empirical"][0]
    assert set(first) == {"zoom", "ap", "ap50", "recall", "buckets"}
    assert set(first["buckets"]) == {"small", "medium", "large"}
    assert first["buckets"]["medium"]["objects"] + first["buckets"]["small"]["objects"] == 6
    rows = list(csv.DictReader(out.open()))
    assert [(r["zoom"], r["bucket"]) for r in rows[:4]] == [
        ("1.0", "all"), ("1.0", "small"), ("1.0", "medium"), ("1.0", "large"),
    ]  # fmt: skip
    assert float(rows[0]["ap50"]) == pytest.approx(first["ap50"], abs=1e-4)
    rc = main(["analyze", "zoom", str(planted), "--run", "1", "--scales", "1"])
    text = capsys.readouterr().out
    assert rc == 0 and "measured on the validation images" in text
    assert "| zoom | AP | AP50 | recall | AP50 small |" in text


def test_csv_without_a_run_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["analyze", "zoom", "--box", "64", "--csv", str(tmp_path / "z.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["studio: error: --csv writes the measured AP: it needs --run"]
    assert not (tmp_path / "z.csv").exists()
