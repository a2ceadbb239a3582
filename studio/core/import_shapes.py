"""The shapes of an import, checked and compared with what the project holds, before
any write: the write transaction then only maps names to ids and inserts.

A shape equal to one already on its image (same class, kind and geometry, as this same
code stored it) is counted as already present, not added again: re-importing a file
changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Engine, select

from studio.core import schema as S
from studio.core.errors import FormatError
from studio.core.import_checks import check_shape
from studio.core.import_match import ImageMatch
from studio.core.import_report import ImportReport
from studio.core.progress import Progress
from studio.core.records import NO_ATTRIBUTES, AnnotationSpec
from studio.core.store.annotations import attribute_values

_NO_ATTRS = attribute_values(NO_ATTRIBUTES)

# (image key, class name, kind, x, y, w, h, polygons JSON, RLE JSON, iscrowd, score, area,
#  attributes)
Shape = tuple


def polygons_json(polygons: list[list[float]]) -> str:
    """JSON text of float polygon parts; 5x faster than json.dumps for a million shapes
    (repr of a finite float is valid JSON)."""
    return "[" + ",".join("[" + ",".join(map(repr, part)) + "]" for part in polygons) + "]"


def existing_signatures(engine: Engine, image_ids: set[int]) -> set[tuple]:
    """(image id, class name, kind, x, y, w, h, polygons, rle) of the shapes already on
    the given images."""
    if not image_ids:
        return set()
    a, c = S.Annotation, S.LabelClass
    q = (
        select(a.image_id, c.name, a.kind, a.x, a.y, a.w, a.h, a.polygons, a.rle)
        .join(c, c.id == a.class_id)
        .where(a.image_id.in_(sorted(image_ids)))
    )
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(q)}


def checked_shapes(
    anns: Sequence[AnnotationSpec],
    m: ImageMatch,
    existing: set[tuple],
    progress: Progress,
    report: ImportReport,
) -> list[Shape]:
    """The shapes to add: each checked against its image (see `check_shape`), those
    already in the project left out and counted (twins within one file are kept: the
    file says there are two)."""
    dims, transforms, problem, refs = m.dims, m.transforms, report.problem, m.refs
    out: list[Shape] = []
    append = out.append
    for i, a in enumerate(anns):
        if i % 4096 == 0:
            progress.step(min(4096, len(anns) - i))
        key = a.image_key
        if key not in dims:
            raise FormatError("", a.where, f"refers to image {key!r}, which is not in the file")
        w, h = dims[key]
        checked = check_shape(a, w, h, transforms.get(key), problem)
        if checked is None:
            continue
        bb, polys, rle, changed = checked
        pj = polygons_json(polys) if polys is not None else None
        rj = json.dumps(rle) if rle is not None else None
        if existing and (refs[key], a.class_name, a.kind, *bb, pj, rj) in existing:
            report.present_annotations += 1
            continue
        area = None if changed else a.area
        append((key, a.class_name, a.kind, *bb, pj, rj, a.iscrowd, a.score, area, a.attributes))
    progress.check()
    return out


def insert_tuples(
    shapes: list[Shape], key_to_id: dict[str, int], class_ids: dict[str, int], source: str, now: str
) -> list[tuple]:
    """Rows in `AnnotationRepo.INSERT_COLUMNS` order (inside the write transaction:
    only lookups, no checks)."""
    return [
        (key_to_id[k], class_ids[c], kind, x, y, w, h, pj, rj, 1 if crowd else 0, source,
         score, now, now, area, *(_NO_ATTRS if at is NO_ATTRIBUTES else attribute_values(at)))
        for k, c, kind, x, y, w, h, pj, rj, crowd, score, area, at in shapes
    ]  # fmt: skip
