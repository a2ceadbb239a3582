"""The project's change events: which rows and images a write names, and in what order
(a listener that refreshes rows one by one relies on both)."""

from __future__ import annotations

from studio.core.importing import import_images
from studio.core.project import Project


def _recorder(p: Project) -> list[tuple[str, object]]:
    """Every annotation event, in the order it fired: ("rows", ids) or ("images", ids)."""
    seen: list[tuple[str, object]] = []
    p.events.annotation_rows_changed.connect(lambda ids: seen.append(("rows", ids)))
    p.events.annotations_changed.connect(lambda ids: seen.append(("images", ids)))
    return seen


def _two_images(p: Project, make_jpeg) -> tuple[list[int], int]:
    make_jpeg(p.path / "images" / "a.jpg", 200, 100)
    make_jpeg(p.path / "images" / "b.jpg", 200, 100, seed=1)
    import_images(p, [p.path / "images"])
    return p.image_ids(), p.add_class("thing")


def test_each_write_names_its_rows_just_before_its_images(project, make_jpeg) -> None:
    p = project
    (a, b), cls = _two_images(p, make_jpeg)
    seen = _recorder(p)
    box = p.add_annotation(a, cls, "box", bbox=(10, 10, 20, 20))
    other = p.add_annotation(b, cls, "box", bbox=(1, 1, 5, 5))
    p.update_annotations({box: {"bbox": (12, 10, 20, 20)}, other: {"bbox": (2, 1, 5, 5)}})
    p.delete_annotations([box])
    assert seen == [
        ("rows", [box]), ("images", [a]),
        ("rows", [other]), ("images", [b]),
        ("rows", [box, other]), ("images", [a, b]),
        ("rows", [box]), ("images", [a]),
    ]  # fmt: skip


def test_undo_of_a_delete_names_the_rows_it_brings_back(project, make_jpeg) -> None:
    p = project
    (a, _), cls = _two_images(p, make_jpeg)
    box = p.add_annotation(a, cls, "box", bbox=(10, 10, 20, 20))
    p.delete_annotations([box])
    seen = _recorder(p)
    p.undo()
    assert seen == [("rows", [box]), ("images", [a])]
    assert [r.id for r in p.annotations(image_ids=[a])] == [box]  # the same id is back
    p.redo()
    assert seen[2:] == [("rows", [box]), ("images", [a])]
    assert p.annotations(image_ids=[a]) == []


def test_a_class_merge_names_no_rows(project, make_jpeg) -> None:
    """Writes that do not list their rows send only `annotations_changed`, so a listener
    that keeps rows for the next change sees none and re-reads everything."""
    p = project
    (a, _), cls = _two_images(p, make_jpeg)
    other = p.add_class("other")
    p.add_annotation(a, other, "box", bbox=(10, 10, 20, 20))
    seen = _recorder(p)
    p.merge_classes([other], cls)
    assert seen == [("images", None)]
