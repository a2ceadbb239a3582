"""What an import did: counts, what was skipped and why, and problems by kind.

`ImportReport.summary()` is the text `studio import` prints and `as_dict()` the object
`studio import --json` prints: the same facts either way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Reports list at most this many examples per kind of problem; the counts are exact.
MAX_EXAMPLES = 20
# Problem kinds (see `ImportReport.problem`) that change a shape without dropping it, and
# those that drop it, are told apart by these words in the kind.
CLIPPED_WORD = "clipped"
DROPPED_WORDS = ("rejected", "skipped", "dropped")


@dataclass
class ImportReport:
    added_images: int = 0
    added_annotations: int = 0
    added_classes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)  # ids of the images touched
    # Images whose stored path was already in the project (re-imports).
    present_images: int = 0
    # (new image, image with the same bytes) pairs: each is imported as its own image.
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    # Shapes equal to one already on their image (same class, kind and geometry).
    present_annotations: int = 0
    # Entries the source held (image files and shapes): tells "nothing to import" from
    # "nothing could be imported".
    source_entries: int = 0
    # Images the annotation file names that were not found, skipped with their shapes
    # (`skip_missing`): "annotation file: where: image name" each.
    missing: list[str] = field(default_factory=list)

    # Annotation problems, counted by kind, with a few examples each.
    _problems: Counter = field(default_factory=Counter)

    def problem(self, kind: str, example: str, n: int = 1) -> None:
        """Count a problem that does not stop the import; keep the first examples.
        A kind naming a dropped shape says "rejected", "skipped" or "dropped"; one
        naming a changed shape says "clipped"."""
        before = self._problems[kind]
        self._problems[kind] += n
        if before < MAX_EXAMPLES and example:
            self.warnings.append(f"{kind}: {example}")

    def missing_images(self) -> list[tuple[str, str]]:
        """(image name, "annotation file: where") of each image left out as not found,
        in the file's order: the name as the annotation file wrote it."""
        out = []
        for entry in self.missing:
            where, _, name = entry.rpartition(": ")
            out.append((name, where))
        return out

    @property
    def problem_counts(self) -> dict[str, int]:
        return dict(self._problems)

    @property
    def clipped(self) -> int:
        return sum(n for k, n in self._problems.items() if CLIPPED_WORD in k)

    @property
    def rejected(self) -> dict[str, int]:
        """{reason: count} of shapes that were not imported."""
        return {
            k: n
            for k, n in self._problems.items()
            if CLIPPED_WORD not in k and any(w in k for w in DROPPED_WORDS)
        }

    @property
    def nothing_imported(self) -> bool:
        """True when the source held something but none of it is in the project now
        (neither added nor already there): every entry was skipped or rejected."""
        landed = self.added_images + self.added_annotations
        present = self.present_images + self.present_annotations
        return self.source_entries > 0 and landed == 0 and present == 0

    def summary(self) -> str:
        """One headline ("imported 3 images, 10 shapes, 2 new classes") and a line each
        for images and shapes when there is more to say."""
        parts = [count_of(self.added_images, "image")]
        if self.added_annotations:
            parts.append(count_of(self.added_annotations, "shape"))
        if self.added_classes:
            parts.append(count_of(len(self.added_classes), "new class", "new classes"))
        lines = ["imported " + ", ".join(parts)]
        images = []
        if self.present_images:
            images.append(f"{self.present_images} already present")
        if self.duplicates:
            images.append(f"{len(self.duplicates)} duplicate pairs (same bytes, both kept)")
        if self.skipped:
            reasons = Counter(_reason_kind(r) for _, r in self.skipped)
            images.append(f"{len(self.skipped)} skipped ({_counts(reasons)})")
        if self.missing:
            images.append(f"{len(self.missing)} not found, left out with their shapes")
        if images:
            lines.append("images: " + "; ".join(images))
        shapes = []
        if self.present_annotations:
            shapes.append(f"{self.present_annotations} already present")
        if self.clipped:
            shapes.append(f"{self.clipped} clipped to the image")
        rejected = self.rejected
        if rejected:
            shapes.append(f"{sum(rejected.values())} not imported ({_counts(rejected)})")
        if shapes:
            lines.append("shapes: " + "; ".join(shapes))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-able data (what `studio import --json` prints)."""
        return {
            "images": {
                "added": self.added_images,
                "already_present": self.present_images,
                "duplicates": [list(p) for p in self.duplicates],
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
                "missing": list(self.missing),
            },
            "annotations": {
                "added": self.added_annotations,
                "already_present": self.present_annotations,
                "clipped": self.clipped,
                "rejected": self.rejected,
            },
            "classes_added": list(self.added_classes),
            "warnings": list(self.warnings),
        }


def _reason_kind(reason: str) -> str:
    # "duplicate of a.jpg" and the like differ per file; count them by their first words.
    return reason.split(":")[0]


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def count_of(n: int, one: str, many: str | None = None) -> str:
    """ "1 image", "3 images"."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
