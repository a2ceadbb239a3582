"""Classes, images and annotations read in one transaction: what exporters write and
what a training run freezes as its dataset.

`write_dataset_snapshot` is the ONE writer of a run's ``dataset.json``: a COCO file
with database ids, file names as stored (relative to the project folder, named in
"studio_root", for images inside it), displayed-pixel coordinates, and per image
its split ("studio_split") and labelling status ("studio_status"). The status tells a
negative sample (done, no shapes) from an image nobody has labelled yet. Shapes a model
pre-labelled on images still waiting for review are left out (`without_unreviewed`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from studio.core import schema as S
from studio.core.kinds import awaiting_review
from studio.core.records import ExportSnapshot
from studio.core.store.annotations import ANNOTATION_COLUMNS, annotation_record
from studio.core.store.classes import read_classes
from studio.core.store.folder import ProjectFolder
from studio.core.store.images import IMAGE_COLUMNS, image_record

# Keys a run's dataset.json adds to each COCO image.
SPLIT_KEY = "studio_split"
STATUS_KEY = "studio_status"
# The project folder the snapshot's relative file names were relative to when written.
ROOT_KEY = "studio_root"


def read_snapshot(
    engine: Engine, folder: ProjectFolder, split: str | None = None
) -> ExportSnapshot:
    """Classes, images (by path) and annotations read in one transaction. `split`
    limits images (and their annotations) to one split."""
    with engine.connect() as conn, conn.begin():
        classes = read_classes(conn)
        iq = select(*IMAGE_COLUMNS).order_by(S.Image.path)
        aq = select(*ANNOTATION_COLUMNS).order_by(S.Annotation.image_id, S.Annotation.id)
        if split is not None:
            iq = iq.where(S.Image.split == split)
            aq = aq.join(S.Image, S.Image.id == S.Annotation.image_id).where(S.Image.split == split)
        images = [image_record(r, folder) for r in conn.execute(iq)]
        anns = [annotation_record(r) for r in conn.execute(aq)]
    return ExportSnapshot(project_dir=folder.path, classes=classes, images=images, annotations=anns)


def without_unreviewed(snap: ExportSnapshot) -> ExportSnapshot:
    """`snap` without the shapes a model pre-labelled on images still waiting for their
    review (source "predicted", status "needs review"): they are the model's own output,
    and as ground truth they scored the model against itself (AP50 0.02 became 0.15 on
    one pre-labelled image). Reviewed (the image marked done) they count."""
    status = {im.id: im.status for im in snap.images}
    kept = [a for a in snap.annotations if not awaiting_review(a.source, status.get(a.image_id))]
    if len(kept) == len(snap.annotations):
        return snap
    return replace(snap, annotations=kept)


def write_dataset_snapshot(
    engine: Engine, folder: ProjectFolder, out_json: Path, split: str | None = None
) -> dict[str, Any]:
    """Write a run's dataset (see the module docstring) atomically at `out_json`;
    returns the data written."""
    from studio.core.formats.coco_writer import coco_dict

    snap = without_unreviewed(read_snapshot(engine, folder, split))
    # Paths as stored (relative to the project folder for images inside it) and the
    # folder they were relative to: a project moved or copied keeps its runs.
    data = coco_dict(snap)
    data[ROOT_KEY] = str(Path(folder.path).absolute())
    by_id = {im.id: im for im in snap.images}
    for im in data["images"]:
        rec = by_id[im["id"]]
        im[SPLIT_KEY] = rec.split
        im[STATUS_KEY] = rec.status
    from studio.core.formats.common import write_text_atomic

    # Whole or not at all, and no partial file left behind on a full disk.
    write_text_atomic(Path(out_json), json.dumps(data))
    return data
