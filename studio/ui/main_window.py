"""The labelling window: browser dock (left), canvas (centre), classes dock (right).

It turns gestures into `Project` calls and shows project state; it never writes SQL and
never decodes an image. Every edit is committed by the core at once, so there is no Save.
Project events arrive through a `ProjectBridge`, queued to the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMenu, QStackedWidget

from studio.core import browse
from studio.core.errors import StudioError
from studio.core.project import Project
from studio.ui.browser.dock import BrowserDock
from studio.ui.canvas import CanvasView
from studio.ui.classes.dialog import ClassDialog
from studio.ui.classes.dock import ClassDock, ClassPicker
from studio.ui.common.bridge import ProjectBridge
from studio.ui.common.errors import show_error
from studio.ui.project.start_page import StartPage, add_recent, recent_projects, remove_recent
from studio.ui.project.transfers import Transfers
from studio.ui.shortcuts import SPECS, ShortcutRegistry, ShortcutsDialog, settings
from studio.ui.training.dock import TrainPanel

TOOLS = ("select", "box", "polygon")
NEED_NO_PROJECT = frozenset(
    {"file.new", "file.open", "file.quit", "help.shortcuts", "view.browser", "view.classes",
     "view.compact"}
)  # fmt: skip


class MainWindow(QMainWindow):
    def __init__(self, registry: ShortcutRegistry | None = None, restore: bool = True):
        """`restore`: take geometry and dock layout from the user's settings (the
        screenshot helper wants the default layout instead)."""
        super().__init__()
        self.project: Project | None = None
        self.bridge: ProjectBridge | None = None
        self.shortcuts = registry or ShortcutRegistry()
        self.actions: dict[str, QAction] = {}
        self.transfers = Transfers(self)
        self._done_text = ""
        self._shown_id: int | None = None
        self._dock_state: QByteArray | None = None
        self.setWindowTitle("Studio")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._build_timers()
        if restore:
            self._restore_window_state()
        else:
            self.resize(1400, 900)
        self._show_start_page()

    # --- building ---------------------------------------------------------------------

    def _build_central(self) -> None:
        self.stack = QStackedWidget(self)
        self.start_page = StartPage(self)
        self.start_page.new_requested.connect(self.new_project_interactive)
        self.start_page.open_requested.connect(self.open_project_interactive)
        self.start_page.demo_requested.connect(self.transfers.open_demo)
        self.start_page.recent_chosen.connect(self.open_path)
        self.canvas = CanvasView(self)
        self.canvas.cursor_moved.connect(self._on_cursor)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.canvas.tool_changed.connect(self._on_tool_changed)
        self.canvas.image_shown.connect(self._on_image_shown)
        self.canvas.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.canvas.installEventFilter(self)
        self.canvas.viewport().installEventFilter(self)
        self._space_dragged = False
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.canvas)
        self.setCentralWidget(self.stack)

    def _build_docks(self) -> None:
        self.browser = BrowserDock(self)
        self.browser.image_activated.connect(self.show_image)
        self.class_dock = ClassDock(self)
        self.class_dock.class_picked.connect(self.pick_class)
        self.class_dock.hidden_changed.connect(self.canvas.set_hidden_classes)
        self.class_dock.edit_requested.connect(self.edit_classes)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.browser)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.class_dock)
        self.resizeDocks([self.browser, self.class_dock], [330, 250], Qt.Orientation.Horizontal)
        # Training sits below the canvas, hidden until asked for (Ctrl+T): labelling
        # needs the room, and the panel keeps polling its run whether shown or not.
        self.train_dock = TrainPanel(self)
        self.train_dock.setObjectName("train_dock")
        self.train_dock.current_model_changed.connect(lambda _run: self.browser.refresh())
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.train_dock)
        self.train_dock.hide()

    def _action(self, action_id: str, text: str, slot, checkable: bool = False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        action.triggered.connect(lambda checked=False: slot())
        if action_id in SPECS:
            self.shortcuts.bind(action, action_id)
        self.addAction(action)  # shortcuts work with the menu bar hidden, docks floating
        self.actions[action_id] = action
        return action

    def _build_actions(self) -> None:
        t = self.transfers
        a = self._action
        a("file.new", "&New project…", self.new_project_interactive)
        a("file.open", "&Open project…", self.open_project_interactive)
        a("file.import_images", "&Import images…", t.import_images_interactive)
        for fmt, label in t.FORMAT_LABELS.items():
            a(f"file.import.{fmt}", f"{label}…", lambda f=fmt: t.import_annotations_interactive(f))
            a(f"file.export.{fmt}", f"{label}…", lambda f=fmt: t.export_interactive(f))
        a("file.quit", "&Quit", self.close)
        a("edit.undo", "&Undo", self.undo)
        a("edit.redo", "&Redo", self.redo)
        a("edit.copy", "&Copy shapes", lambda: self.canvas.copy_selection())
        a("edit.paste", "&Paste shapes", lambda: self.canvas.paste())
        a("edit.copy_previous", "Copy shapes from p&revious image", self.copy_from_previous)
        a("edit.delete", "&Delete shapes", lambda: self.canvas.delete_selected())
        a("edit.classes", "C&lasses…", self.edit_classes)
        a("class.pick", "&Pick class…", self.pick_class_interactive)
        for n in range(1, 10):
            a(f"class.{n}", f"Class {n}", lambda n=n: self.pick_class_key(n))
        a("view.fit", "&Fit image", lambda: self.canvas.fit())
        a("view.zoom_100", "Zoom &100%", lambda: self.canvas.zoom_100())
        a("view.compact", "Compact image &list", lambda: self.browser.set_compact(
            self.actions["view.compact"].isChecked()), checkable=True)  # fmt: skip
        a("nav.next", "&Next image", lambda: self.step_image(+1))
        a("nav.prev", "P&revious image", lambda: self.step_image(-1))
        a("nav.done_next", "Mark &done, next unlabelled", self.mark_done_and_next)
        group = QActionGroup(self)
        for tool, label in zip(TOOLS, ("&Select", "&Box", "P&olygon"), strict=True):
            group.addAction(
                a(f"tool.{tool}", f"{label} tool", lambda t=tool: self.set_tool(t), True)
            )
        self.actions["tool.select"].setChecked(True)
        a("tool.cancel", "Cancel / select tool", self.escape)
        a("help.shortcuts", "&Keyboard shortcuts…", self.show_shortcuts)
        for action_id, dock in (
            ("view.browser", self.browser),
            ("view.classes", self.class_dock),
            ("view.training", self.train_dock),
        ):
            toggle = dock.toggleViewAction()
            self.shortcuts.bind(toggle, action_id)
            self.actions[action_id] = toggle

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._fill_menu(file, "file.new", "file.open")
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_menu(file, "-", "file.import_images")
        formats = list(self.transfers.FORMAT_LABELS)
        self._fill_menu(file.addMenu("Import &annotations"), *(f"file.import.{f}" for f in formats))
        self._fill_menu(file.addMenu("&Export"), *(f"file.export.{f}" for f in formats))
        self._fill_menu(file, "-", "file.quit")
        self._fill_menu(bar.addMenu("&Edit"), "edit.undo", "edit.redo", "-", "edit.copy",
                        "edit.paste", "edit.copy_previous", "edit.delete", "-", "edit.classes")  # fmt: skip
        self._fill_menu(bar.addMenu("&Label"), "tool.select", "tool.box", "tool.polygon", "-",
                        "class.pick", *(f"class.{n}" for n in range(1, 10)), "-",
                        "nav.prev", "nav.next", "nav.done_next")  # fmt: skip
        self._fill_menu(bar.addMenu("&View"), "view.fit", "view.zoom_100", "-",
                        "view.browser", "view.classes", "view.training", "view.compact")  # fmt: skip
        self._fill_menu(bar.addMenu("&Help"), "help.shortcuts")

    def _fill_menu(self, menu: QMenu, *names: str) -> None:
        for name in names:
            menu.addSeparator() if name == "-" else menu.addAction(self.actions[name])

    def _build_status_bar(self) -> None:
        self.image_label = QLabel("")
        self.zoom_label = QLabel("")
        self.cursor_label = QLabel("")
        self.counts_label = QLabel("")
        self.cursor_label.setMinimumWidth(110)
        bar = self.statusBar()
        bar.addWidget(self.image_label, 1)
        for w in (self.cursor_label, self.zoom_label, self.counts_label):
            bar.addPermanentWidget(w)

    def _build_timers(self) -> None:
        # Counts over the whole project are refreshed once per burst of edits.
        self._counts_timer = QTimer(self, singleShot=True, interval=150)
        self._counts_timer.timeout.connect(self._refresh_counts)

    def _restore_window_state(self) -> None:
        s = settings()
        geometry, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        # Dock layout applies while a project is open; the start page shows no docks.
        if isinstance(state, QByteArray) and not state.isEmpty():
            self._dock_state = state

    def save_window_state(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        state = self.saveState() if self.project is not None else self._dock_state
        if state is not None:
            s.setValue("window/state", state)

    def _show_docks(self) -> None:
        if self._dock_state is not None:
            self.restoreState(self._dock_state)
        else:
            self.browser.show()
            self.class_dock.show()

    # --- project lifecycle -----------------------------------------------------------

    def open_project(self, project: Project) -> None:
        """Show `project` (the window owns it from now on and closes it)."""
        self.close_project()
        self.project = project
        self.bridge = ProjectBridge(project.events, self)
        for name, slot in (
            ("images_changed", self._on_images_changed),
            ("annotations_changed", self._on_annotations_changed),
            ("classes_changed", self._on_classes_changed),
            ("undo_changed", self._on_undo_changed),
        ):
            self.bridge.connect_queued(name, slot)
        self.canvas.set_project(project)
        self.class_dock.set_project(project)
        self.browser.set_project(project)
        self.train_dock.set_project(project)
        self.canvas.set_current_class(self.class_dock.current_class)
        add_recent(project.path)
        self.setWindowTitle(f"{project.path.name} — Studio")
        self.stack.setCurrentWidget(self.canvas)
        self._show_docks()
        self._set_project_ui(True)
        self._on_undo_changed(project.undo_stack.can_undo, project.undo_stack.can_redo)
        ids = self.browser.ids()
        last = project.get_setting("last_image")
        first = last if last is not None and self.browser.model.row_of(last) is not None else None
        if first is None and ids:
            first = ids[0]
        if first is not None:
            self.show_image(first)
        self._refresh_counts()
        self.canvas.setFocus()

    def open_path(self, path: Path | str) -> bool:
        try:
            project = Project.open(path)
        except StudioError as e:
            remove_recent(Path(path))
            show_error(self, "Open project", e)
            self.start_page.reload()
            return False
        self.open_project(project)
        return True

    def close_project(self) -> None:
        if self.project is None:
            return
        self._dock_state = self.saveState()
        if self.bridge is not None:
            self.bridge.disconnect_project()
            self.bridge.deleteLater()
            self.bridge = None
        self.browser.set_project(None)
        self.class_dock.set_project(None)
        self.train_dock.set_project(None)
        self.canvas.set_project(None)
        self._shown_id = None
        self.project.close()
        self.project = None
        self._show_start_page()

    def _show_start_page(self) -> None:
        self.setWindowTitle("Studio")
        self.start_page.reload()
        self.stack.setCurrentWidget(self.start_page)
        self.browser.hide()
        self.class_dock.hide()
        self.train_dock.hide()
        self._set_project_ui(False)
        for label in (self.image_label, self.zoom_label, self.cursor_label, self.counts_label):
            label.setText("")

    def _set_project_ui(self, has_project: bool) -> None:
        for action_id, action in self.actions.items():
            if action_id not in NEED_NO_PROJECT:
                action.setEnabled(has_project)

    def new_project_interactive(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New project: choose an empty folder")
        if folder:
            try:
                self.open_project(Project.create(folder))
            except StudioError as e:
                show_error(self, "New project", e)

    def open_project_interactive(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project folder")
        if folder:
            self.open_path(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in recent_projects():
            self.recent_menu.addAction(str(p), lambda p=p: self.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # --- images -----------------------------------------------------------------------

    def current_image_id(self) -> int | None:
        return self.canvas.image_id

    def show_image(self, image_id: int) -> None:
        if self.project is None:
            return
        self._shown_id = image_id
        self.canvas.show_image(image_id)  # -> image_shown -> the status bar
        self.browser.select_image(image_id)
        self.project.set_setting("last_image", image_id)
        ids, row = self.browser.ids(), self.browser.model.row_of(image_id)
        if row is not None:  # decode the neighbours while the user looks at this one
            self.canvas.prefetch(ids[row + 1 : row + 3] + ids[max(0, row - 1) : row])

    def step_image(self, delta: int) -> None:
        ids = self.browser.ids()
        if not ids:
            return
        current = self.current_image_id()
        row = self.browser.model.row_of(current) if current is not None else None
        if row is None:
            self.show_image(ids[0] if delta > 0 else ids[-1])
        elif 0 <= row + delta < len(ids):
            self.show_image(ids[row + delta])
        else:
            self.statusBar().showMessage("Last image" if delta > 0 else "First image", 2000)

    def mark_done_and_next(self) -> None:
        current = self.current_image_id()
        if self.project is None or current is None:
            return
        target = browse.next_unlabelled(self.project, self.browser.ids(), current)
        self.project.set_status([current], "done")
        if target is None:
            self.statusBar().showMessage("Marked done. No unlabelled image left.", 4000)
        else:
            self.show_image(target)

    def copy_from_previous(self) -> None:
        ids, current = self.browser.ids(), self.current_image_id()
        row = self.browser.model.row_of(current) if current is not None else None
        if row:
            self.canvas.copy_from_previous(ids[row - 1])

    def _update_image_label(self, image_id: int) -> None:
        try:
            im = self.project.image(image_id) if self.project else None
        except StudioError:
            im = None
        self.image_label.setText(f"{im.name}   {im.width} × {im.height}" if im else "")

    def _on_image_shown(self, image_id: int) -> None:
        self._update_image_label(image_id)
        self._update_counts_label()

    def _on_cursor(self, x: float, y: float) -> None:
        self.cursor_label.setText(f"x {int(x)}, y {int(y)}")

    def _refresh_counts(self) -> None:
        """Counts over the whole project (a scan at 100k images): after bursts of edits,
        not on every image change."""
        if self.project is None:
            return
        done, total = browse.done_count(self.project)
        self._done_text = f"{done:,} / {total:,} done"
        self.class_dock.refresh()
        self._update_counts_label()

    def _update_counts_label(self) -> None:
        current = self.current_image_id()
        text = self._done_text
        if current is not None and self.project is not None:
            n = len(self.project.annotations(image_ids=[current]))
            text += f"  ·  {n} shape{'s' if n != 1 else ''}"
        self.counts_label.setText(text)

    # --- tools and classes -------------------------------------------------------------

    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self._on_tool_changed(tool)

    def _on_tool_changed(self, tool: str) -> None:
        action = self.actions.get(f"tool.{tool}")
        if action is not None and not action.isChecked():
            action.setChecked(True)

    def escape(self) -> None:
        """Esc: cancel what the canvas is doing (a drag, a polygon, the selection);
        with nothing to cancel, back to the select tool."""
        if not self.canvas.cancel():
            self.set_tool("select")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keys the canvas shares with window shortcuts, while it has the focus:

        * Left / Right are previous / next image, except with shapes selected, where
          the canvas nudges them;
        * Space held while dragging pans the canvas; Space tapped (no mouse press
          before its release) is "mark done, next unlabelled", if bound to Space.
        """
        etype = event.type()
        if watched is self.canvas.viewport():
            if etype == QEvent.Type.MouseButtonPress:
                self._space_dragged = True
            return False
        if watched is not self.canvas or not isinstance(event, QKeyEvent):
            return False
        key, plain = event.key(), event.modifiers() == Qt.KeyboardModifier.NoModifier
        if etype == QEvent.Type.ShortcutOverride:
            arrows = key in (Qt.Key.Key_Left, Qt.Key.Key_Right)
            if (arrows and self.canvas.selected_annotation_ids()) or (
                key == Qt.Key.Key_Space and plain and self._space_is_done_key()
            ):
                event.accept()  # the key goes to the canvas, not to the shortcut
                return True
        elif key == Qt.Key.Key_Space and not event.isAutoRepeat():
            if etype == QEvent.Type.KeyPress:
                self._space_dragged = False
            elif etype == QEvent.Type.KeyRelease and not self._space_dragged:
                QTimer.singleShot(0, self.mark_done_and_next)
        return False

    def _space_is_done_key(self) -> bool:
        space = QKeySequence(Qt.Key.Key_Space)
        return any(k == space for k in self.actions["nav.done_next"].shortcuts())

    def pick_class_key(self, n: int) -> None:
        class_id = self.class_dock.class_for_key(n)
        if class_id is None:
            self.statusBar().showMessage(f"No class {n}: add classes in the Classes dock", 3000)
        else:
            self.pick_class(class_id)

    def pick_class(self, class_id: int) -> None:
        """Use `class_id` for new shapes, and give it to the selected shapes."""
        if self.project is None:
            return
        self.class_dock.set_current_class(class_id)
        self.canvas.set_current_class(class_id)
        selected = self.canvas.selected_annotation_ids()
        if selected:
            change = [
                a.id for a in self.project.annotations(ids=selected) if a.class_id != class_id
            ]
            if change:
                self.project.set_annotation_class(change, class_id)

    def pick_class_interactive(self) -> None:
        if self.project is None:
            return
        picker = ClassPicker(self.project.classes(), self)
        if picker.exec() and picker.chosen is not None:
            self.pick_class(picker.chosen)

    def edit_classes(self) -> None:
        if self.project is not None:
            ClassDialog(self.project, self).exec()

    # --- undo -------------------------------------------------------------------------

    def undo(self) -> None:
        self._undo_redo("undo")

    def redo(self) -> None:
        self._undo_redo("redo")

    def _undo_redo(self, which: str) -> None:
        if self.project is None:
            return
        try:
            text = getattr(self.project, which)()
        except StudioError as e:
            self.statusBar().showMessage(f"Cannot {which}: {e}", 5000)
            return
        if text:
            self.statusBar().showMessage(f"{which.capitalize()}: {text}", 2000)

    def _on_undo_changed(self, can_undo: bool, can_redo: bool) -> None:
        stack = self.project.undo_stack if self.project else None
        self.actions["edit.undo"].setEnabled(can_undo)
        self.actions["edit.redo"].setEnabled(can_redo)
        self.actions["edit.undo"].setText(
            f"&Undo {stack.undo_text}" if stack and can_undo else "&Undo"
        )
        self.actions["edit.redo"].setText(
            f"&Redo {stack.redo_text}" if stack and can_redo else "&Redo"
        )

    # --- project events ---------------------------------------------------------------

    def _on_images_changed(self, _ids: object) -> None:
        # The image this window asked for, not the canvas's: the canvas has already let
        # go of a deleted image by the time this queued slot runs.
        current = self._shown_id
        row = self.browser.model.row_of(current) if current is not None else None
        self.browser.refresh_now()
        self._counts_timer.start()
        if current is None or self.project is None:
            return
        try:
            self.project.image(current)
        except StudioError:  # the shown image was deleted: show the one now in its place
            ids = self.browser.ids()
            if ids:
                self.show_image(ids[min(row or 0, len(ids) - 1)])

    def _on_annotations_changed(self, _ids: object) -> None:
        self.browser.refresh()
        self._counts_timer.start()

    def _on_classes_changed(self) -> None:
        self.class_dock.refresh()
        self.browser.classes_changed()
        self.canvas.set_current_class(self.class_dock.current_class)

    def refresh_all(self) -> None:
        """After work done through another connection (imports): re-read everything."""
        if self.project is None:
            return
        self.class_dock.refresh()
        self.browser.classes_changed()
        self.browser.refresh_now()
        self._refresh_counts()
        if self.current_image_id() is None and self.browser.ids():
            self.show_image(self.browser.ids()[0])
        elif self.current_image_id() is not None:
            self.canvas.show_image(self.current_image_id())

    # --- dialogs, drops, closing ------------------------------------------------------

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self.shortcuts, self).exec()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.project is not None and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.transfers.import_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_window_state()
        self.close_project()
        self.canvas.shutdown()
        super().closeEvent(event)
