"""The browser's selection as a labeller builds it (Ctrl-click, right-click on a
selection for its menu), and what the window shows when the shown image is deleted:
each checked against the database, with real clicks."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def _click_row(qtbot, browser, row: int, button=LEFT, mods=Qt.KeyboardModifier.NoModifier):
    view = browser.view
    view.scrollTo(browser.model.index(row))
    rect = view.visualRect(browser.model.index(row))
    qtbot.mouseClick(view.viewport(), button, mods, QPoint(rect.center()))


def test_ctrl_click_adds_one_image_and_keeps_the_selection(window, qtbot):
    """Ctrl-click emptied the selection: the click opened the image, and opening an
    image selected it alone, after which Qt's toggle unselected it."""
    browser = window.browser
    ids = browser.ids()
    _click_row(qtbot, browser, 1)
    _click_row(qtbot, browser, 3, mods=SHIFT)
    _click_row(qtbot, browser, 5, mods=CTRL)
    assert browser.selected_ids() == [ids[1], ids[2], ids[3], ids[5]]
    _click_row(qtbot, browser, 2, mods=CTRL)  # and Ctrl-click again takes one out
    assert browser.selected_ids() == [ids[1], ids[3], ids[5]]
    assert browser.status_button.isEnabled()


def test_a_right_click_on_a_selection_keeps_it_for_the_menu(window, qtbot):
    browser = window.browser
    ids = browser.ids()
    _click_row(qtbot, browser, 0)
    _click_row(qtbot, browser, 4, mods=SHIFT)
    view = browser.view
    rect = view.visualRect(browser.model.index(2))
    qtbot.mousePress(view.viewport(), RIGHT, pos=QPoint(rect.center()))
    assert browser.selected_ids() == ids[:5]
    assert window.current_image_id() == ids[2]  # the click opens the image it is on


def test_deleting_the_shown_block_shows_the_image_after_it(window, qtbot, monkeypatch):
    from studio.ui.common import plain_text

    monkeypatch.setattr(plain_text, "ask", lambda *_a, **_k: True)
    browser = window.browser
    ids = list(browser.ids())
    _click_row(qtbot, browser, 1)
    _click_row(qtbot, browser, 3, mods=SHIFT)  # image ids[3] shown, ids[1..3] selected
    assert window.current_image_id() == ids[3]
    browser.delete_selected()
    qtbot.waitUntil(lambda: window.current_image_id() == ids[4], timeout=3000)


def test_deleting_every_image_clears_the_shown_one_and_undo_shows_one_again(
    window, qtbot, monkeypatch
):
    from studio.ui.common import plain_text

    monkeypatch.setattr(plain_text, "ask", lambda *_a, **_k: True)
    browser = window.browser
    browser.view.selectAll()
    browser.delete_selected()
    qtbot.waitUntil(lambda: browser.ids() == [], timeout=3000)
    qtbot.wait(50)
    assert window.objects.image_id is None and window.objects.model.rows == []
    assert not browser.status_button.isEnabled() and not browser.delete_button.isEnabled()
    window.project.undo()
    qtbot.waitUntil(lambda: window.current_image_id() is not None, timeout=3000)
    assert window.objects.image_id == window.current_image_id()


def test_the_list_button_and_the_view_menu_agree(window, qtbot):
    action = window.actions["view.compact"]
    assert not action.isChecked()
    qtbot.mouseClick(window.browser.view_button, LEFT)
    assert window.browser.model.compact and action.isChecked()
    action.trigger()  # the menu turns it off at once, not on the second try
    assert not window.browser.model.compact and not window.browser.view_button.isChecked()


def test_space_on_a_done_image_adds_no_empty_undo_step(window, qtbot):
    first = window.project.images()[0]
    assert first.status == "done"
    window.show_image(first.id)
    before = window.project.undo_stack.undo_text
    window.labelling.mark_done_and_next()
    assert window.project.undo_stack.undo_text == before
