"""Under the Train button: why one click trains what it trains (the recipe's sentence,
`recipe.explain_choice`), and, when the CPU detector learns from scratch for want of an
ImageNet file, what a file in the weights folder would change (`recipe.weights_note`).

Both read the project (the objects' sizes) and the weights folders, so they are computed
in a worker (`run_task`) whenever the panel's settings or the weights folder change; an
answer to an older question is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.common.concurrency import run_task
from studio.ui.common.errors import error_text


@dataclass(frozen=True)
class Choice:
    """What one click chooses, in the user's words."""

    explanation: str  # e.g. "composable_cspnet_pan_fcos (a light detector: no GPU, ...)"
    note: str | None  # recipe.weights_note, only for the recommended ("auto") model


def explain(project_dir: Path | str, settings: dict[str, Any]) -> Choice:
    """The sentence and the weights note for `settings` (TrainConfig fields over the
    recipe) on the project in `project_dir`, with its weights folder searched. Slow
    (imports torch, reads every object's size): call it from a worker."""
    from studio.core.project import Project
    from studio.ml.run.preflight import config_from_settings
    from studio.ml.run.process import use_weights_setting
    from studio.ml.run.recipe import explain_choice, weights_note

    with Project.open(project_dir) as p:
        use_weights_setting(p)
        cfg, _ = config_from_settings(p, settings)
        # A model picked by hand is the user's choice: no note about what auto would pick.
        note = None if settings.get("model") else weights_note(cfg.model)
        return Choice(explain_choice(p, cfg), note)


class ChoiceLines(QWidget):
    """Two muted lines: the explanation (its tooltip the note) and the note, hidden when
    there is none."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._asked = 0  # the newest question; older answers are dropped
        self.why = QLabel()
        self.note = QLabel()
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(1)
        for label in (self.why, self.note):
            label.setWordWrap(True)
            # Muted (the theme's placeholder colour): it explains, the line above says what.
            label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            box.addWidget(label)
        self.clear()

    def clear(self) -> None:
        self._asked += 1
        self._show(Choice("", None))

    def refresh(self, project_dir: Path | str, settings: dict[str, Any]) -> None:
        """Ask again (in a worker) what one click chooses with `settings`."""
        self._asked += 1
        asked, settings = self._asked, dict(settings)
        run_task(
            lambda _progress: explain(project_dir, settings),
            lambda choice: self._answer(asked, choice),
            # A setting that cannot work: the checks at Train say so in full.
            lambda exc: self._answer(asked, Choice(f"(cannot explain: {error_text(exc)})", None)),
        )

    def _answer(self, asked: int, choice: Choice) -> None:
        if asked == self._asked:
            self._show(choice)

    def _show(self, choice: Choice) -> None:
        self.why.setText(f"Why: {choice.explanation}" if choice.explanation else "")
        self.why.setToolTip(choice.note or "")
        self.note.setText(f"Note: {choice.note}" if choice.note else "")
        self.note.setVisible(bool(choice.note))
        self.setVisible(bool(choice.explanation or choice.note))

    def texts(self) -> list[str]:
        """The lines shown (for tests and the status bar)."""
        return [t for t in (self.why.text(), self.note.text()) if t]
