"""Names that users and files choose are shown as the characters they are, never as HTML
(a class named "<h1 style='color:red'>cat" must not draw large red letters)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QMessageBox

from studio.core.errors import StudioError
from studio.ui.common import errors, plain_text

HOSTILE = "<h1 style='color:red'>cat</h1> & <b>dog</b>"


def _rendered(rich: str) -> str:
    doc = QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


def test_tooltip_shows_the_exact_characters():
    tip = plain_text.plain_tooltip(f"{HOSTILE}\nsecond line")
    assert _rendered(tip) == f"{HOSTILE}\nsecond line"


def test_message_boxes_and_labels_are_plain_text(qtbot, monkeypatch):
    box = plain_text.message_box(None, QMessageBox.Icon.Information, "t", HOSTILE)
    assert box.textFormat() == Qt.TextFormat.PlainText and box.text() == HOSTILE
    label = plain_text.plain_label(HOSTILE)
    assert label.textFormat() == Qt.TextFormat.PlainText
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self) or 0)
    errors.show_error(None, "Import", StudioError(f"{HOSTILE}.json: not JSON"))
    (err,) = shown
    assert err.textFormat() == Qt.TextFormat.PlainText and err.text().startswith(HOSTILE)


def test_browser_tooltip_of_an_html_file_name(window, qtbot, tmp_path, window_write_images):
    from studio.core.importing import import_images

    (src,) = window_write_images(tmp_path / "src", 1)
    hostile = src.with_name("<big>big<big>.png")
    src.rename(hostile)
    import_images(window.project, [hostile])
    qtbot.waitUntil(lambda: len(window.browser.ids()) == 10, timeout=5000)
    model = window.browser.model
    tips = [model.data(model.index(r, 0), Qt.ItemDataRole.ToolTipRole) for r in range(10)]
    (tip,) = [t for t in tips if "big.png" in t or "big&lt;" in t]
    assert _rendered(tip).startswith(f"{hostile}\n64 × 48 px")
