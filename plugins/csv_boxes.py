"""Example Studio plugin: boxes as CSV (`image,class,x,y,w,h`, pixels of the displayed image).

Try it without installing anything:

    STUDIO_PLUGIN_PATH=plugins studio export DIR --format csv boxes.csv
    STUDIO_PLUGIN_PATH=plugins studio import DIR --format csv boxes.csv --images IMAGES

A packaged plugin advertises its module under the entry-point group "studio.plugins".
"""

from __future__ import annotations

import csv
from pathlib import Path

from studio.core.errors import FormatError
from studio.core.formats.common import ImageResolver
from studio.core.records import AnnotationSpec, DatasetSpec, ExportSnapshot, ImageSpec

HEADER = ["image", "class", "x", "y", "w", "h"]


def read_csv(path: Path, images_dir: Path | None = None, class_names=None) -> DatasetSpec:
    spec = DatasetSpec(classes=list(class_names or []))
    resolver = ImageResolver(images_dir)
    seen: dict[str, ImageSpec] = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        if next(rows, None) != HEADER:
            raise FormatError(path, "line 1", f"expected the header {','.join(HEADER)}")
        for n, row in enumerate(rows, start=2):
            if len(row) != 6:
                raise FormatError(path, f"line {n}", f"expected 6 fields, got {len(row)}")
            name, cls, *nums = row
            try:
                x, y, w, h = map(float, nums)
            except ValueError as e:
                raise FormatError(path, f"line {n}", f"not a number: {e}") from e
            if name not in seen:
                seen[name] = ImageSpec(key=name, path=resolver.resolve(name, path, f"line {n}"))
                spec.images.append(seen[name])
            if cls not in spec.classes:
                spec.classes.append(cls)
            spec.annotations.append(
                AnnotationSpec(name, cls, "box", (x, y, w, h), where=f"line {n}")
            )
    return spec


def write_csv(snapshot: ExportSnapshot, out: Path) -> list[str]:
    names = {c.id: c.name for c in snapshot.classes}
    images = {im.id: im for im in snapshot.images}
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for a in snapshot.annotations:
            w.writerow([images[a.image_id].path, names[a.class_id], *a.bbox])
    return (
        []
        if all(a.kind == "box" for a in snapshot.annotations)
        else ["polygons and masks written as boxes"]
    )


def register(api) -> None:
    api.add_format("csv", reader=read_csv, writer=write_csv)
