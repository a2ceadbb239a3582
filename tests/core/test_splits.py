"""Train/val/test assignment: seeded, stratified by class, re-runnable, and per image."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from studio import cli
from studio.core.errors import StudioError
from studio.core.importing import import_images
from studio.core.project import Project
from studio.core.splits import assign_splits, compute_splits, resolve_files


def _splits(p: Project) -> dict[int, str]:
    return {im.id: im.split for im in p.images()}


def _groups(p: Project) -> dict[int, list[int]]:
    """Images grouped by the rarest class they contain (-1: no labels), computed here
    independently of the code under test."""
    classes_of: dict[int, set[int]] = defaultdict(set)
    for a in p.annotations():
        classes_of[a.image_id].add(a.class_id)
    freq = Counter(c for cs in classes_of.values() for c in cs)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in p.image_ids():
        cs = classes_of.get(i)
        groups[min(cs, key=lambda c: (freq[c], c)) if cs else -1].append(i)
    return groups


def test_same_seed_same_assignment_other_seed_differs(demo_project: Project) -> None:
    p = demo_project
    stored = _splits(p)
    a = compute_splits(p, 0.3, 0.1, seed=1)
    b = compute_splits(p, 0.3, 0.1, seed=1)
    c = compute_splits(p, 0.3, 0.1, seed=2)
    assert a == b
    assert set(a) == set(p.image_ids())
    assert a != c
    assert set(a.values()) == {"train", "val", "test"}
    # compute_splits only computes; assign_splits writes what it computes.
    assert _splits(p) == stored
    assign_splits(p, 0.3, 0.1, seed=1)
    assert _splits(p) == a


@pytest.mark.parametrize(("val", "test"), [(0.2, 0.0), (0.25, 0.15), (0.5, 0.5), (0.0, 0.0)])
def test_fractions_per_class_group(demo_project: Project, val: float, test: float) -> None:
    p = demo_project
    for seed in range(3):
        counts = assign_splits(p, val=val, test=test, seed=seed)
        splits = _splits(p)
        assert counts == {s: list(splits.values()).count(s) for s in ("train", "val", "test")}
        groups = _groups(p)
        for members in groups.values():
            n = len(members)
            got = Counter(splits[i] for i in members)
            assert abs(got["val"] - n * val) <= 1, (members, got)
            assert abs(got["test"] - n * test) <= 1, (members, got)
        n = len(splits)
        assert abs(counts["val"] - n * val) <= len(groups)
        assert abs(counts["test"] - n * test) <= len(groups)
        assert sum(counts.values()) == 24


def test_rare_classes_get_validation_images(demo_project: Project) -> None:
    p = demo_project
    images_of: dict[int, set[int]] = defaultdict(set)
    for a in p.annotations():
        images_of[a.class_id].add(a.image_id)
    frequent = [c for c, ims in images_of.items() if len(ims) >= 5]
    assert len(frequent) >= 3
    for seed in range(10):
        assign_splits(p, val=0.2, test=0.0, seed=seed)
        splits = _splits(p)
        for c in frequent:
            assert any(splits[i] == "val" for i in images_of[c]), (seed, c)


def test_stratified_rare_class_in_a_bigger_project(project: Project, make_jpeg) -> None:
    """60 images: a class on only 5 of them still gets exactly one of them into val."""
    for i in range(60):
        make_jpeg(project.path / "imgs" / f"{i:02d}.jpg", 8, 8, seed=i)
    import_images(project, [project.path / "imgs"])
    ids = project.image_ids()
    common, rare = project.add_class("common"), project.add_class("rare")
    for i in ids:
        project.add_annotation(i, common, "box", bbox=(0, 0, 4, 4))
    for i in ids[:5]:
        project.add_annotation(i, rare, "box", bbox=(4, 4, 4, 4))
    for seed in range(20):
        assign_splits(project, val=0.2, seed=seed, undoable=False)
        splits = _splits(project)
        assert sum(splits[i] == "val" for i in ids[:5]) == 1
        assert sum(splits[i] == "val" for i in ids[5:]) == 11


def test_rerun_is_stable_and_undoable(demo_project: Project) -> None:
    p = demo_project
    original = _splits(p)
    assign_splits(p, val=0.4, test=0.1, seed=5)
    first = _splits(p)
    assert first != original
    assert p.get_setting("split_fractions") == {"val": 0.4, "test": 0.1, "seed": 5}
    assign_splits(p, val=0.4, test=0.1, seed=5)
    assert _splits(p) == first
    p.undo()
    assert _splits(p) == first
    p.undo()
    assert _splits(p) == original


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.0), (0.8, 0.3), (1.5, 0.0), (0.2, -1.0)])
def test_bad_fractions_raise(demo_project: Project, val: float, test: float) -> None:
    before = _splits(demo_project)
    with pytest.raises(StudioError, match="split fractions"):
        assign_splits(demo_project, val=val, test=test)
    assert _splits(demo_project) == before


def test_empty_project(project: Project) -> None:
    assert assign_splits(project) == {"train": 0, "val": 0, "test": 0}


def test_unlabelled_images_are_split_too(project: Project, make_jpeg) -> None:
    for i in range(10):
        make_jpeg(project.path / "imgs" / f"{i}.jpg", 8, 8, seed=i)
    import_images(project, [project.path / "imgs"])
    counts = assign_splits(project, val=0.3, test=0.2, seed=3)
    # One group of 10 whose shares are whole numbers: exact.
    assert counts == {"train": 5, "val": 3, "test": 2}


# --- per-image assignment -------------------------------------------------------------------


def test_set_split_per_image(demo_project: Project) -> None:
    p = demo_project
    ids = p.image_ids()[:3]
    p.set_split(ids, "test")
    assert [im.split for im in p.images(ids=ids)] == ["test"] * 3
    others = {i: s for i, s in _splits(p).items() if i not in ids}
    p.undo()
    assert {i: s for i, s in _splits(p).items() if i not in ids} == others


def test_resolve_files_by_path_name_and_errors(project: Project, make_jpeg, tmp_path: Path) -> None:
    make_jpeg(project.path / "a" / "same.jpg", 8, 8, seed=1)
    make_jpeg(project.path / "b" / "same.jpg", 8, 8, seed=2)
    make_jpeg(project.path / "a" / "unique.jpg", 8, 8, seed=3)
    outside = make_jpeg(tmp_path / "out" / "far.jpg", 8, 8, seed=4)
    import_images(project, [project.path / "a", project.path / "b", outside])
    by_path = {im.path: im.id for im in project.images()}
    assert resolve_files(project, ["a/same.jpg", " unique.jpg ", "", str(outside)]) == [
        by_path["a/same.jpg"],
        by_path["a/unique.jpg"],
        by_path[str(outside)],
    ]
    with pytest.raises(StudioError) as e:
        resolve_files(project, ["same.jpg", "nope.jpg", "unique.jpg"])
    msg = str(e.value)
    assert "not in the project: nope.jpg" in msg
    assert "ambiguous (give the path): same.jpg" in msg


def test_cli_split_assign_from_a_list_file(
    demo_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = demo_project
    train = [im for im in p.images() if im.split == "train"][:4]
    listing = tmp_path / "list.txt"
    listing.write_text(
        "\n".join([train[0].name, train[1].path, "", str(train[2].abs_path), train[3].name]) + "\n"
    )
    rc = cli.main(["split", str(p.path), "--assign", "val", "--files", str(listing)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.strip() == "4 images set to val"
    assert [im.split for im in p.images(ids=[im.id for im in train])] == ["val"] * 4


def test_cli_split_assign_comma_list(
    demo_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    p = demo_project
    ims = p.images()[:2]
    rc = cli.main(
        ["split", str(p.path), "--assign", "test", "--files", f"{ims[0].name},{ims[1].name}"]
    )
    assert rc == 0, capsys.readouterr().err
    assert {im.split for im in p.images(ids=[ims[0].id, ims[1].id])} == {"test"}


def test_cli_split_unknown_names_is_a_clear_error(
    demo_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = demo_project
    before = _splits(p)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{p.images()[0].name}\nno_such_image.jpg\n")
    rc = cli.main(["split", str(p.path), "--assign", "val", "--files", str(listing)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().splitlines() == ["studio: error: not in the project: no_such_image.jpg"]
    assert _splits(p) == before


def test_cli_split_assign_needs_files(demo_project: Project, capsys) -> None:
    rc = cli.main(["split", str(demo_project.path), "--assign", "val"])
    assert rc == 2
    assert "--assign and --files go together" in capsys.readouterr().err


def test_cli_split_reassigns_with_seed(demo_project: Project, capsys) -> None:
    p = demo_project
    rc = cli.main(["split", str(p.path), "--val", "0.25", "--test", "0.25", "--seed", "4"])
    out = capsys.readouterr().out.strip()
    assert rc == 0
    counts = Counter(_splits(p).values())
    assert out == f"train {counts['train']}  val {counts['val']}  test {counts['test']}"
    assert _splits(p) == compute_splits(p, 0.25, 0.25, 4)
