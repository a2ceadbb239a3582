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
from typing import TYPE_CHECKING, TypeAlias

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QDockWidget, QMenu, QMenuBar, QWidget

from studio.ui.shortcuts import SPECS, ShortcutRegistry

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

TOOLS = ("select", "box", "polygon")
TOOL_LABELS = ("&Select", "&Box", "P&olygon")
# Usable on the start page too; every other action waits for a project.
NEED_NO_PROJECT = frozenset(
    {"file.new", "file.open", "file.quit", "help.shortcuts", "view.browser", "view.classes",
     "view.compact"}
)  # fmt: skip
SEPARATOR = "-"
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
        ActionSpec("file.import_images", "&Import images…", t.import_images_interactive),
    ]
    for fmt, label in t.FORMAT_LABELS.items():
        specs += [
            ActionSpec(f"file.import.{fmt}", f"{label}…", lambda f=fmt: t.import_annotations_interactive(f)),
            ActionSpec(f"file.export.{fmt}", f"{label}…", lambda f=fmt: t.export_interactive(f)),
        ]  # fmt: skip
    specs += [
        ActionSpec("file.quit", "&Quit", w.close),
        ActionSpec("edit.undo", "&Undo", w.undo),
        ActionSpec("edit.redo", "&Redo", w.redo),
        ActionSpec("edit.copy", "&Copy shapes", lambda: w.canvas.copy_selection()),
        ActionSpec("edit.paste", "&Paste shapes", lambda: w.canvas.paste()),
        ActionSpec("edit.copy_previous", "Copy shapes from p&revious image", w.copy_from_previous),
        ActionSpec("edit.delete", "&Delete shapes", lambda: w.canvas.delete_selected()),
        ActionSpec("edit.classes", "C&lasses…", w.edit_classes),
        ActionSpec("class.pick", "&Pick class…", w.pick_class_interactive),
        *(ActionSpec(f"class.{n}", f"Class {n}", lambda n=n: w.pick_class_key(n))
          for n in range(1, 10)),
        ActionSpec("view.fit", "&Fit image", lambda: w.canvas.fit()),
        ActionSpec("view.zoom_100", "Zoom &100%", lambda: w.canvas.zoom_100()),
        ActionSpec("view.compact", "Compact image &list", lambda: w.browser.set_compact(
            w.actions["view.compact"].isChecked()), checkable=True),
        ActionSpec("nav.next", "&Next image", lambda: w.step_image(+1)),
        ActionSpec("nav.prev", "P&revious image", lambda: w.step_image(-1)),
        ActionSpec("nav.done_next", "Mark &done, next not done", w.mark_done_and_next),
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
    group = QActionGroup(parent)
    for tool in TOOLS:
        group.addAction(actions[f"tool.{tool}"])
    actions[f"tool.{TOOLS[0]}"].setChecked(True)
    return group


def dock_toggles(
    registry: ShortcutRegistry, docks: Mapping[str, QDockWidget]
) -> dict[str, QAction]:
    """Each dock's own show/hide action (action id -> dock), with its keys bound."""
    toggles = {}
    for action_id, dock in docks.items():
        toggle = dock.toggleViewAction()
        registry.bind(toggle, action_id)
        toggles[action_id] = toggle
    return toggles


def menu_layout(formats: Sequence[str]) -> list[tuple[str, Sequence[MenuEntry]]]:
    """The menu bar: (title, entries) per menu, left to right."""
    return [
        ("&File", ("file.new", "file.open", RECENT, SEPARATOR, "file.import_images",
                   ("Import &annotations", [f"file.import.{f}" for f in formats]),
                   ("&Export", [f"file.export.{f}" for f in formats]),
                   SEPARATOR, "file.quit")),
        ("&Edit", ("edit.undo", "edit.redo", SEPARATOR, "edit.copy", "edit.paste",
                   "edit.copy_previous", "edit.delete", SEPARATOR, "edit.classes")),
        ("&Label", ("tool.select", "tool.box", "tool.polygon", SEPARATOR, "class.pick",
                    *(f"class.{n}" for n in range(1, 10)), SEPARATOR,
                    "nav.prev", "nav.next", "nav.done_next")),
        ("&View", ("view.fit", "view.zoom_100", SEPARATOR, "view.browser", "view.classes",
                   "view.training", "view.compact")),
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
