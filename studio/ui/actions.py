"""The window's actions and menu bar, as data: what each action is called, what it does,
and where it sits in the menus.

An action id (``"nav.next"``) is also its key in `studio.ui.shortcuts`: binding there
gives the action its keys and lists it in the shortcuts dialog. Every action is added to
the window itself too, so its keys work with the menu bar hidden and docks floating.
A new command is one `ActionSpec` in `window_actions` and one id in `menu_layout`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMenu,
    QMenuBar,
    QPushButton,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.core.undo.stack import UndoStack
from studio.ui.icons import icon
from studio.ui.shortcuts import SPECS, ShortcutRegistry
from studio.ui.theme import FILL_STEPS, THEME_LABELS, Theme

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

SEPARATOR = "-"
TOOLS = ("select", "box", "polygon")
TOOL_LABELS = ("&Select", "&Box", "P&olygon")
# Usable on the start page too; every other action waits for a project.
NEED_NO_PROJECT = frozenset(
    {"file.new", "file.open", "file.open_folder", "file.quit", "help.shortcuts",
     "view.browser", "view.classes", "view.compact", "view.tags",
     *(f"view.fill.{p}" for p in FILL_STEPS), *(f"view.theme.{t}" for t in Theme)}
)  # fmt: skip
FILL_IDS = tuple(f"view.fill.{p}" for p in FILL_STEPS)
THEME_IDS = tuple(f"view.theme.{t}" for t in Theme)
# The toolbar, left to right (SEPARATOR between groups), and each action's icon.
TOOLBAR = ("tool.select", "tool.box", "tool.polygon", SEPARATOR, "nav.prev", "nav.next",
           SEPARATOR, "view.fit", "view.zoom_100", SEPARATOR, "train.show")  # fmt: skip
TOOLBAR_ICONS = {"tool.select": "select", "tool.box": "box", "tool.polygon": "polygon",
                 "nav.prev": "prev", "nav.next": "next", "view.fit": "fit",
                 "view.zoom_100": "zoom_100", "train.show": "train"}  # fmt: skip
RECENT = "@recent"  # where File ▸ Open recent goes; the window fills it when it opens

# A menu entry: an action id, SEPARATOR, RECENT, or (submenu title, entries).
MenuEntry: TypeAlias = "str | tuple[str, Sequence[MenuEntry]]"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    id: str
    text: str
    slot: Callable[[], object]
    checkable: bool = False


def window_actions(w: MainWindow) -> list[ActionSpec]:
    """Every action of the window's menus. Canvas slots are looked up when triggered,
    so they always reach the window's current canvas."""
    t = w.transfers
    specs = [
        ActionSpec("file.new", "&New project…", w.new_project_interactive),
        ActionSpec("file.open", "&Open project…", w.open_project_interactive),
        ActionSpec(
            "file.open_folder", "Open &folder of images…", w.folders.open_folder_interactive
        ),
        ActionSpec("file.import_images", "&Import images…", t.import_images_interactive),
    ]
    for fmt, label in t.FORMAT_LABELS.items():
        specs.append(ActionSpec(f"file.import.{fmt}", f"{label}…", lambda f=fmt: t.import_annotations_interactive(f)))  # fmt: skip
        if fmt in t.EXPORTS:
            specs.append(ActionSpec(f"file.export.{fmt}", f"{label}…", lambda f=fmt: t.export_interactive(f)))  # fmt: skip
    specs += [
        ActionSpec("file.quit", "&Quit", w.close),
        ActionSpec("edit.undo", "&Undo", w.undo),
        ActionSpec("edit.redo", "&Redo", w.redo),
        ActionSpec("edit.copy", "&Copy shapes", lambda: w.canvas.copy_selection()),
        ActionSpec("edit.paste", "&Paste shapes", lambda: w.canvas.paste()),
        ActionSpec("edit.copy_previous", "Copy shapes from p&revious image", w.labelling.copy_from_previous),
        ActionSpec("edit.delete", "&Delete shapes", lambda: w.canvas.delete_selected()),
        ActionSpec("edit.classes", "C&lasses…", w.edit_classes),
        ActionSpec("class.pick", "&Pick class…", w.pick_class_interactive),
        *(ActionSpec(f"class.{n}", f"Class {n}", lambda n=n: w.labelling.pick_class_key(n))
          for n in range(1, 10)),
        ActionSpec("view.fit", "&Fit image", lambda: w.canvas.fit()),
        ActionSpec("view.zoom_100", "Zoom &100%", lambda: w.canvas.zoom_100()),
        ActionSpec("view.compact", "Compact image &list", lambda: w.browser.set_compact(
            w.actions["view.compact"].isChecked()), checkable=True),
        ActionSpec("view.tags", "Class &tags on shapes", lambda: w.look.set_tags_visible(
            w.actions["view.tags"].isChecked()), checkable=True),
        *(ActionSpec(f"view.fill.{p}", f"{p}%" if p else "&Outlines only",
                     lambda p=p: w.look.set_fill_opacity(p), True) for p in FILL_STEPS),
        *(ActionSpec(f"view.theme.{t}", label, lambda t=t: w.look.set_theme(t), True)
          for t, label in THEME_LABELS.items()),
        ActionSpec("train.show", "&Train…", w.show_training),
        ActionSpec("nav.next", "&Next image", lambda: w.step_image(+1)),
        ActionSpec("nav.prev", "P&revious image", lambda: w.step_image(-1)),
        ActionSpec("nav.done_next", "Mark &done, next not done", w.labelling.mark_done_and_next),
        *(ActionSpec(f"tool.{tool}", f"{label} tool", lambda t=tool: w.set_tool(t), True)
          for tool, label in zip(TOOLS, TOOL_LABELS, strict=True)),
        ActionSpec("tool.cancel", "Cancel / select tool", w.escape),
        ActionSpec("help.shortcuts", "&Keyboard shortcuts…", w.show_shortcuts),
    ]  # fmt: skip
    return specs


def create_actions(
    parent: QWidget, registry: ShortcutRegistry, specs: Sequence[ActionSpec]
) -> dict[str, QAction]:
    """One QAction per spec, owned by and added to `parent`, keys bound in `registry`."""
    actions: dict[str, QAction] = {}
    for spec in specs:
        action = QAction(spec.text, parent, checkable=spec.checkable)
        action.triggered.connect(lambda _checked=False, slot=spec.slot: slot())
        if spec.id in SPECS:
            registry.bind(action, spec.id)
        parent.addAction(action)  # shortcuts work with the menu bar hidden, docks floating
        actions[spec.id] = action
    return actions


def group_tools(parent: QWidget, actions: Mapping[str, QAction]) -> QActionGroup:
    """Make the tool actions exclusive, the select tool checked."""
    return exclusive(parent, actions, [f"tool.{t}" for t in TOOLS], f"tool.{TOOLS[0]}")


def exclusive(
    parent: QWidget, actions: Mapping[str, QAction], ids: Sequence[str], checked: str
) -> QActionGroup:
    """Make the actions `ids` a one-of group, `checked` the one checked."""
    group = QActionGroup(parent)
    for action_id in ids:
        group.addAction(actions[action_id])
    actions[checked].setChecked(True)
    return group


def build_toolbar(parent: QWidget, actions: Mapping[str, QAction]) -> QToolBar:
    """The main toolbar: tools, previous / next, zoom, and Train (with its text)."""
    bar = QToolBar("Toolbar", parent)
    bar.setObjectName("main_toolbar")
    bar.setIconSize(QSize(20, 20))
    bar.setMovable(False)
    for entry in TOOLBAR:
        if entry == SEPARATOR:
            bar.addSeparator()
            continue
        action = actions[entry]
        action.setIcon(icon(TOOLBAR_ICONS[entry]))
        bar.addAction(action)
    train = bar.widgetForAction(actions["train.show"])
    if train is not None:  # the one button that says what it does in words
        train.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        train.setObjectName("train_button")
    actions["train.show"].setToolTip("Show the training panel: train a model on these labels")
    return bar


def build_empty_hint(window: MainWindow) -> QWidget:
    """What an empty project shows instead of the canvas: how to add the first images
    (drop them anywhere on the window, or import), with the Import button at hand."""
    page = QWidget(window)
    page.setObjectName("empty_hint")
    keys = window.shortcuts.keys("file.import_images")
    key_text = f" ({keys[0].toString(QKeySequence.SequenceFormat.NativeText)})" if keys else ""
    label = QLabel(
        "<h2>This project has no images yet</h2>"
        f"<p>Drop images here, or File ▸ Import images…{key_text}</p>"
        "<p>Then draw boxes and polygons, and press Train once a few images are labelled.</p>"
    )
    label.setObjectName("empty_hint_text")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)  # the page must not widen the window's minimum size
    button = QPushButton("Import images…")
    button.clicked.connect(lambda: window.transfers.import_images_interactive())
    layout = QVBoxLayout(page)
    layout.addStretch(1)
    layout.addWidget(label)
    layout.addWidget(button, 0, Qt.AlignmentFlag.AlignCenter)
    layout.addStretch(2)
    return page


def enable_for_project(actions: Mapping[str, QAction], has_project: bool) -> None:
    """Enable every action that needs a project, or disable them (the start page)."""
    for action_id, action in actions.items():
        if action_id not in NEED_NO_PROJECT:
            action.setEnabled(has_project)


def update_undo_actions(actions: Mapping[str, QAction], stack: UndoStack | None) -> None:
    """Undo / Redo enabled and named after what they would do ("Undo move 2 shapes")."""
    for which in ("undo", "redo"):
        can = stack is not None and getattr(stack, f"can_{which}")
        text = (getattr(stack, f"{which}_text") or "") if can else ""
        action = actions[f"edit.{which}"]
        action.setEnabled(can)
        action.setText(f"&{which.capitalize()} {text}".rstrip())


def fill_recent_menu(
    menu: QMenu, paths: Sequence[Path], open_path: Callable[[Path], object]
) -> None:
    """File ▸ Open recent: one entry per project folder, or "(none)"."""
    menu.clear()
    for p in paths:
        menu.addAction(str(p), lambda p=p: open_path(p))
    if menu.isEmpty():
        menu.addAction("(none)").setEnabled(False)


def dock_toggles(
    registry: ShortcutRegistry, docks: Mapping[str, QDockWidget]
) -> dict[str, QAction]:
    """Each dock's own show/hide action (action id -> dock), with its keys bound."""
    toggles = {}
    for action_id, dock in docks.items():
        toggle = dock.toggleViewAction()
        if action_id in SPECS:
            registry.bind(toggle, action_id)
        toggles[action_id] = toggle
    return toggles


def menu_layout(
    formats: Sequence[str], exports: Sequence[str]
) -> list[tuple[str, Sequence[MenuEntry]]]:
    """The menu bar: (title, entries) per menu, left to right."""
    return [
        ("&File", ("file.new", "file.open", "file.open_folder", RECENT, SEPARATOR,
                   "file.import_images",
                   ("Import &annotations", [f"file.import.{f}" for f in formats]),
                   ("&Export", [f"file.export.{f}" for f in exports]),
                   SEPARATOR, "file.quit")),
        ("&Edit", ("edit.undo", "edit.redo", SEPARATOR, "edit.copy", "edit.paste",
                   "edit.copy_previous", "edit.delete", SEPARATOR, "edit.classes")),
        ("&Label", ("tool.select", "tool.box", "tool.polygon", SEPARATOR, "class.pick",
                    *(f"class.{n}" for n in range(1, 10)), SEPARATOR,
                    "nav.prev", "nav.next", "nav.done_next")),
        ("&View", ("view.fit", "view.zoom_100", SEPARATOR, ("Shape &fill", FILL_IDS),
                   "view.tags", SEPARATOR, "view.browser", "view.classes", "view.objects",
                   "view.training", "train.show", "view.inspect", "view.analysis",
                   "view.compact", SEPARATOR,
                   ("&Theme", THEME_IDS))),
        ("&Help", ("help.shortcuts",)),
    ]  # fmt: skip


def build_menu_bar(
    bar: QMenuBar, actions: Mapping[str, QAction], layout: Sequence[tuple[str, Sequence[MenuEntry]]]
) -> QMenu:
    """Fill `bar` from `layout`; returns the (empty) Open recent menu."""
    recent: list[QMenu] = []
    for title, entries in layout:
        _fill_menu(bar.addMenu(title), actions, entries, recent)
    return recent[0]


def _fill_menu(
    menu: QMenu, actions: Mapping[str, QAction], entries: Sequence[MenuEntry], recent: list[QMenu]
) -> None:
    for entry in entries:
        if isinstance(entry, tuple):
            title, sub = entry
            _fill_menu(menu.addMenu(title), actions, sub, recent)
        elif entry == SEPARATOR:
            menu.addSeparator()
        elif entry == RECENT:
            recent.append(menu.addMenu("Open &recent"))
        else:
            menu.addAction(actions[entry])
