"""Train/val/test assignment: seeded, deterministic, stratified by class.

Each image is grouped by the rarest class it contains (images without labels form
their own group), so a rare class gets its share of validation images instead of
landing wholly in train. Within a group, images are shuffled with a generator seeded
by (seed, group) and laid on [0, 1) with a random offset, which gives every group
floor or ceil of its exact share. The same seed and labels always give the same split.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.core.errors import StudioError
from studio.core.kinds import Split
from studio.core.project import Project
from studio.core.records import SPLITS
from studio.core.undo.commands import AssignSplits

__all__ = ["AssignSplits", "assign_splits", "compute_splits", "resolve_files"]


def compute_splits(project: Project, val: float, test: float, seed: int) -> dict[int, str]:
    if not (0 <= val <= 1 and 0 <= test <= 1 and val + test <= 1):
        raise StudioError(
            f"split fractions must be in [0, 1] and add up to at most 1 (val={val}, test={test})"
        )
    ids = project.store.images.ids()
    pairs = project.store.annotations.image_class_pairs()
    classes_of: dict[int, set[int]] = defaultdict(set)
    for image_id, class_id in pairs:
        classes_of[image_id].add(class_id)
    freq = Counter(c for cs in classes_of.values() for c in cs)
    groups: dict[int, list[int]] = defaultdict(list)
    for image_id in ids:
        cs = classes_of.get(image_id)
        key = min(cs, key=lambda c: (freq[c], c)) if cs else -1
        groups[key].append(image_id)
    out: dict[int, str] = {}
    for key in sorted(groups):
        members = groups[key]
        rng = np.random.default_rng([seed, key + 1])
        order = rng.permutation(len(members))
        offset = rng.random()
        n = len(members)
        for rank, idx in enumerate(order):
            u = (rank + offset) / n
            out[members[idx]] = (
                Split.TEST if u < test else Split.VAL if u < test + val else Split.TRAIN
            )
    return out


def assign_splits(
    project: Project, val: float = 0.2, test: float = 0.0, seed: int = 0, undoable: bool = True
) -> dict[str, int]:
    """Re-assign every image's split; returns the count per split."""
    new = compute_splits(project, val, test, seed)
    cmd = AssignSplits(new, {"val": val, "test": test, "seed": seed})
    if undoable:
        project.execute(cmd)
    else:
        cmd.do(project.store)
    counts = Counter(new.values())
    return {s: counts.get(s, 0) for s in SPLITS}


def resolve_files(project: Project, names: Sequence[str]) -> list[int]:
    """Image ids for user-given names: a stored path, an absolute path, or a file name
    that is unique in the project. Unknown or ambiguous names raise, naming them."""
    images = project.images()
    by_stored = {im.path: im.id for im in images}
    by_abs = {str(im.abs_path): im.id for im in images}
    by_name: dict[str, list[int]] = defaultdict(list)
    for im in images:
        by_name[im.abs_path.name].append(im.id)
    ids, unknown, ambiguous = [], [], []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in by_stored:
            ids.append(by_stored[name])
        elif str(Path(name).expanduser().resolve()) in by_abs:
            ids.append(by_abs[str(Path(name).expanduser().resolve())])
        elif len(by_name.get(Path(name).name, [])) == 1:
            ids.append(by_name[Path(name).name][0])
        elif len(by_name.get(Path(name).name, [])) > 1:
            ambiguous.append(name)
        else:
            unknown.append(name)
    if unknown or ambiguous:
        parts = []
        if unknown:
            parts.append(
                f"not in the project: {', '.join(unknown[:5])}"
                + (" ..." if len(unknown) > 5 else "")
            )
        if ambiguous:
            parts.append(f"ambiguous (give the path): {', '.join(ambiguous[:5])}")
        raise StudioError("; ".join(parts))
    return ids
