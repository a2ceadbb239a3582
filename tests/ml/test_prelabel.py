"""With a tiny trained run: predict all images and skip unchanged ones, `studio analyze
errors --json`, and `studio prelabel` with one undo."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.core.kinds import ImageStatus, Source
from studio.core.project import Project
from studio.ml import cli as commands
from studio.ml.analysis.prelabel import prelabel
from tests.ml.conftest import TINY


@pytest.fixture()
def trained(demo_dir):
    res = commands.train(
        demo_dir, model=TINY, epochs=1, batch_size=4, image_size=96, weights="none",
        backbone_weights="none", device="cpu", workers=0, task="detection", lr=2e-3,
        warmup_iters=2,
    )  # fmt: skip
    return demo_dir, res["run_id"]


@pytest.mark.slow
def test_predict_all_skip_unchanged_analyze_and_prelabel(trained, capsys):
    demo_dir, run_id = trained
    first = commands.predict_run(demo_dir, run_id)  # no split: every image
    assert first["images"] == 12 and first["predicted"] == 12 and first["skipped"] == 0
    again = commands.predict_run(demo_dir, run_id)
    assert again["predicted"] == 0 and again["skipped"] == 12
    assert again["predictions"] == first["predictions"]

    capsys.readouterr()
    assert main(["analyze", "errors", str(demo_dir), "--run", str(run_id), "--json",
                 "--score", "0.05"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert {"per_class", "total", "confusion", "errors"} <= set(data)
    assert set(data["errors"]) == {"cls", "loc", "both", "dupe", "bkg", "miss"}
    row = next(iter(data["per_class"].values()))
    assert {"tp", "fp", "fn", "precision", "recall", "ap", "ap50"} <= set(row)
    labels, matrix = data["confusion"]["labels"], data["confusion"]["matrix"]
    assert labels[-1] == "background" and len(matrix) == len(labels)
    assert sum(r[-1] for r in matrix) <= data["total"]["fn"]
    assert main(["analyze", "errors", str(demo_dir), "--run", str(run_id), "--iou", "2"]) == 2

    with Project.open(demo_dir) as p:
        before = p.annotation_count()
        val = [im.id for im in p.images("val")] or [im.id for im in p.images()][:3]
        split = "val" if p.images("val") else None
        names = None if split else [p.image(i).name for i in val]
        stored = [r for r in p.predictions(run_id, val) if r["score"] >= 0.05]
        res = prelabel(p, run_id, split=split, names=names, score=0.05)
        assert res["annotations"] == len(stored) > 0
        added = [a for a in p.annotations(val) if a.source == Source.PREDICTED]
        assert len(added) == len(stored) and all(a.score >= 0.05 for a in added)
        marked = {a.image_id for a in added}
        assert {im.status for im in p.images(ids=sorted(marked))} == {ImageStatus.NEEDS_REVIEW}
        assert p.info()["sources"]["predicted"] == len(stored)
        p.undo()
        assert p.annotation_count() == before
        assert ImageStatus.NEEDS_REVIEW not in {im.status for im in p.images(ids=sorted(marked))}


def test_prelabel_needs_one_image_choice(demo_dir):
    with pytest.raises(SystemExit) as e:
        main(["prelabel", str(demo_dir), "--run", "1"])
    assert e.value.code == 2


@pytest.mark.slow
def test_a_damaged_image_is_skipped_and_named_the_rest_predicted(trained, capsys):
    """One image damaged since import used to stop `studio predict` (and `analyze
    errors`, `prelabel`) for every image, storing nothing."""
    demo_dir, run_id = trained
    with Project.open(demo_dir) as p:
        victim = p.images()[3]
    victim.abs_path.write_bytes(b"not an image any more")
    capsys.readouterr()
    assert main(["predict", str(demo_dir), "--run", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert f"skipped {victim.abs_path}" in out and "11 images predicted" in out
    with Project.open(demo_dir) as p:
        assert {r["image_id"] for r in p.predictions(run_id, None)} <= {
            im.id for im in p.images() if im.id != victim.id
        }
        assert p.predictions(run_id, [im.id for im in p.images()][:3])
