"""`studio info --json` counts annotations by source."""

from __future__ import annotations

import json

from studio.cli import main
from studio.core.kinds import Source
from studio.core.project import Project


def test_info_counts_sources(tmp_path, capsys):
    from studio.core.demo import create_demo_project

    create_demo_project(tmp_path / "p", n_images=3, seed=0, image_size=(64, 48)).close()
    with Project.open(tmp_path / "p") as p:
        n = p.annotation_count()
        im = p.image_ids()[0]
        cls = p.classes()[0].id
        p.add_annotation(im, cls, "box", bbox=(1, 1, 5, 5), source=Source.PREDICTED, score=0.7)
        p.add_annotation(im, cls, "box", bbox=(2, 2, 5, 5))
    capsys.readouterr()
    assert main(["info", str(tmp_path / "p"), "--json"]) == 0
    sources = json.loads(capsys.readouterr().out)["sources"]
    assert sources == {"manual": sources["manual"], "imported": sources["imported"], "predicted": 1}
    assert sum(sources.values()) == n + 2 and sources["manual"] >= 1
