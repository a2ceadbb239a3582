"""What an import did: counts, what was skipped and why, and problems by kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Reports list at most this many examples per kind of problem; the counts are exact.
MAX_EXAMPLES = 20


@dataclass
class ImportReport:
    added_images: int = 0
    added_annotations: int = 0
    added_classes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)  # ids of the images touched

    # Annotation problems, counted by kind, with a few examples each.
    _problems: Counter = field(default_factory=Counter)

    def problem(self, kind: str, example: str) -> None:
        """Count a problem that does not stop the import; keep the first examples."""
        self._problems[kind] += 1
        if self._problems[kind] <= MAX_EXAMPLES:
            self.warnings.append(f"{kind}: {example}")

    @property
    def problem_counts(self) -> dict[str, int]:
        return dict(self._problems)

    def summary(self) -> str:
        parts = [f"{self.added_images} images"]
        if self.added_annotations:
            parts.append(f"{self.added_annotations} shapes")
        if self.added_classes:
            parts.append(f"{len(self.added_classes)} new classes")
        text = "imported " + ", ".join(parts)
        if self.skipped:
            text += f"; skipped {len(self.skipped)} files"
        for kind, n in self._problems.items():
            text += f"; {n} {kind}"
        return text
