"""Annotation attributes (occluded, truncated, difficult, group id, notes) as the
formats that have them spell them. VOC and labelme read and write theirs in their own
modules; COCO has no standard place, so Studio follows CVAT: an "attributes" object
per annotation ({"occluded": false, ...}), with iscrowd kept apart. YOLO has none.
"""

from __future__ import annotations

from typing import Any

from studio.core.records import FLAG_FIELDS, NO_ATTRIBUTES, Attributes


def coco_attributes(d: Any) -> Attributes:
    """Attributes from a COCO annotation's "attributes" object as CVAT writes it
    ({"occluded": false, ...}); Studio adds "truncated", "difficult", "group_id" and
    "notes". Other keys (CVAT's "rotation", "track_id", custom ones) are left out.
    Raises ValueError when the object or its group id is malformed."""
    if type(d) is not dict:
        raise ValueError("attributes must be an object")
    gid = d.get("group_id")
    if gid is not None and (type(gid) is not int or gid < 0):
        raise ValueError("attributes.group_id must be a whole number >= 0")
    notes = d.get("notes")
    found = Attributes(
        *(d.get(k) is True for k in FLAG_FIELDS), gid, notes if type(notes) is str else ""
    )
    return NO_ATTRIBUTES if found.is_default() else found


def coco_attributes_dict(at: Attributes) -> dict[str, Any]:
    """COCO "attributes" of a shape: the flags always (as CVAT writes "occluded"), a
    group id and notes only when set."""
    out: dict[str, Any] = {k: getattr(at, k) for k in FLAG_FIELDS}
    if at.group_id is not None:
        out["group_id"] = at.group_id
    if at.notes:
        out["notes"] = at.notes
    return out
