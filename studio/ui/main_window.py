"""The labelling window: browser dock (left), canvas (centre), classes and objects docks
(right), a toolbar above.

It turns gestures into `Project` calls and shows project state; it never writes SQL and
never decodes an image. Every edit is committed by the core at once, so there is no Save.
Project events arrive through a `ProjectBridge`, queued to the GUI thread.

The window is where the feature packages meet (they never import each other): it builds
them, wires their signals, and owns the actions (actions.py: ids, texts, menus), the keys
shared with the canvas (canvas_keys.py), the status bar (status_bar.py) and the look
(theme.py: light/dark, the canvas's fill and tags, kept in the user's settings).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QStackedWidget

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.ui.actions import (
    FILL_IDS,
    THEME_IDS,
    build_empty_hint,
    build_menu_bar,
    build_toolbar,
    create_actions,
    dock_toggles,
    enable_for_project,
    exclusive,
    fill_recent_menu,
    group_tools,
    menu_layout,
    update_undo_actions,
    window_actions,
)
from studio.ui.analysis.analysis_dock import AnalysisDock
from studio.ui.analysis.dock import InspectDock
from studio.ui.analysis.work import ObjectRef
from studio.ui.browser.dock import BrowserDock
from studio.ui.canvas import CanvasView
from studio.ui.canvas_keys import CanvasKeys
from studio.ui.classes.dialog import ClassDialog
from studio.ui.classes.dock import ClassDock
from studio.ui.classes.picker import ClassPicker
from studio.ui.common.bridge import ProjectBridge
from studio.ui.common.errors import show_error
from studio.ui.dock_room import add_model_panels
from studio.ui.labelling import Labelling
from studio.ui.objects.dock import ObjectsDock
from studio.ui.plugin_docks import install_plugins
from studio.ui.project.folder_opener import FolderOpener
from studio.ui.project.start_page import StartPage, add_recent, recent_projects, remove_recent
from studio.ui.project.transfers import FileDrops, Transfers
from studio.ui.shortcuts import ShortcutRegistry, ShortcutsDialog
from studio.ui.status_bar import StatusBar
from studio.ui.theme import Look, save_window, saved_window
from studio.ui.training.dock import TrainPanel


class MainWindow(QMainWindow):
    # The open project, or None once it is closed: for panels that plugins add.
    project_changed = Signal(object)

    def __init__(self, registry: ShortcutRegistry | None = None, restore: bool = True):
        """`restore`: take geometry and dock layout from the user's settings (the
        screenshot helper wants the default layout instead)."""
        super().__init__()
        self.project: Project | None = None
        self.bridge: ProjectBridge | None = None
        self.shortcuts = registry or ShortcutRegistry()
        self.actions: dict[str, QAction] = {}
        self.transfers = Transfers(self)
        self.folders = FolderOpener(self)  # File > Open folder… and New project…
        self.labelling = Labelling(self)  # stepping, class keys, undo: the commands
        self._shown_id: int | None = None
        self._dock_state: QByteArray | None = None
        self.setWindowTitle("Studio")
        self.setAcceptDrops(True)  # files dropped on the window are imported
        self.installEventFilter(FileDrops(self, self.transfers, lambda: self.project is not None))
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self.addToolBar(build_toolbar(self, self.actions))
        self.look.apply_saved()
        self._build_status_bar()
        self._build_timers()
        self.plugin_docks, plugin_errors = install_plugins(self, self.canvas)
        for line in plugin_errors:
            self.status_bar.showMessage(line, 10000)
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
        self.start_page.folder_requested.connect(self.folders.open_folder_interactive)
        self.start_page.demo_requested.connect(self.transfers.open_demo)
        self.start_page.recent_chosen.connect(self.open_path)
        self.canvas = CanvasView(self)
        self.canvas.cursor_moved.connect(lambda x, y: self.status_bar.show_cursor(x, y))
        self.canvas.zoom_changed.connect(lambda z: self.status_bar.show_zoom(z))
        self.canvas.tool_changed.connect(self._on_tool_changed)
        self.canvas.image_shown.connect(self._on_image_shown)
        self.canvas.message.connect(lambda text: self.status_bar.showMessage(text, 5000))
        self.empty_hint = build_empty_hint(self)  # a project without images: what to do
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.empty_hint)
        self.setCentralWidget(self.stack)

    def _build_docks(self) -> None:
        self.browser = BrowserDock(self)
        self.browser.image_activated.connect(self.show_image)
        self.browser.compact_changed.connect(lambda on: self.actions["view.compact"].setChecked(on))
        self.class_dock = ClassDock(self)
        self.class_dock.class_picked.connect(self.labelling.pick_class)
        self.class_dock.hidden_changed.connect(self.canvas.set_hidden_classes)
        self.canvas.editor.on_hidden_class_drawn = self.labelling.reveal_class
        self.class_dock.edit_requested.connect(self.edit_classes)
        self.objects = ObjectsDock(self)
        self.objects.selection_requested.connect(self.canvas.select)
        self.objects.hidden_changed.connect(self.canvas.set_shape_hidden)
        self.objects.locked_changed.connect(self.canvas.set_shape_locked)
        self.objects.class_change_requested.connect(self.pick_class_interactive)
        self.canvas.selection_changed.connect(self.objects.select_ids)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.browser)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.class_dock)
        self.splitDockWidget(self.class_dock, self.objects, Qt.Orientation.Vertical)
        self.resizeDocks([self.browser, self.class_dock], [330, 390], Qt.Orientation.Horizontal)
        self.resizeDocks([self.class_dock, self.objects], [300, 400], Qt.Orientation.Vertical)
        # The right-hand column keeps its height when Training opens below the canvas.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        # Training sits below the canvas, hidden until asked for (Ctrl+T): labelling
        # needs the room, and the panel keeps polling its run whether shown or not.
        self.train_dock = TrainPanel(self)
        self.train_dock.setObjectName("train_dock")
        self.train_dock.current_model_changed.connect(lambda _run: self.browser.refresh())
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.train_dock)
        self.train_dock.hide()
        self._build_model_docks()

    def _build_model_docks(self) -> None:
        # Inspect and Analysis: hidden until asked for, like training (see dock_room).
        self.inspect_dock = InspectDock(self)
        self.inspect_dock.attach_canvas(self.canvas, self.browser.selected_ids)
        self.inspect_dock.image_errors.connect(self.browser.set_error_counts)
        self.inspect_dock.review.bind_keys(self.shortcuts)
        self.analysis_dock = AnalysisDock(self)
        self.analysis_dock.attach_canvas(self.canvas)
        self.canvas.image_shown.connect(self.analysis_dock.show_image)
        for dock in (self.inspect_dock, self.analysis_dock):
            dock.objects_chosen.connect(self._show_objects)
            dock.message.connect(lambda t: self.status_bar.showMessage(t, 5000))
        panels = (self.inspect_dock, self.analysis_dock)
        add_model_panels(self, panels, (self.class_dock, self.objects))

    @property
    def _panels(self) -> tuple:
        """What follows the open project, the canvas first (and last to let go)."""
        return (self.canvas, self.class_dock, self.objects, self.browser, self.train_dock,
                self.inspect_dock, self.analysis_dock)  # fmt: skip

    def _show_objects(self, refs: list[ObjectRef]) -> None:
        """Objects an Inspect number stands for: select their images, show the first."""
        if refs:
            self.browser.show_only(sorted({r.image_id for r in refs}))
            self.show_image(refs[0].image_id)
            self.inspect_dock.zoom_to(refs[0])

    def _build_actions(self) -> None:
        self.actions = create_actions(self, self.shortcuts, window_actions(self))
        self._tools = group_tools(self, self.actions)
        docks = {"view.browser": self.browser, "view.classes": self.class_dock,
                 "view.objects": self.objects, "view.training": self.train_dock,
                 "view.inspect": self.inspect_dock, "view.analysis": self.analysis_dock}  # fmt: skip
        self.actions.update(dock_toggles(self.shortcuts, docks))
        exclusive(self, self.actions, FILL_IDS, FILL_IDS[0])
        exclusive(self, self.actions, THEME_IDS, THEME_IDS[0])
        self.look = Look(self.actions, self.canvas.shapes)
        has_selection = lambda: bool(self.canvas.selected_annotation_ids())  # noqa: E731
        done = self.actions["nav.done_next"]
        self._canvas_keys = CanvasKeys(
            self.canvas, has_selection, done, self.labelling.mark_done_and_next, self
        )
        self._canvas_keys.install()

    def _build_menus(self) -> None:
        layout = menu_layout(list(self.transfers.FORMAT_LABELS), self.transfers.EXPORTS)
        self.recent_menu = build_menu_bar(self.menuBar(), self.actions, layout)
        self.recent_menu.aboutToShow.connect(
            lambda: fill_recent_menu(self.recent_menu, recent_projects(), self.open_path)
        )

    def _build_status_bar(self) -> None:
        self.status_bar = StatusBar(self)
        self.setStatusBar(self.status_bar)

    def _build_timers(self) -> None:
        # Counts over the whole project are refreshed once per burst of edits.
        self._counts_timer = QTimer(self, singleShot=True, interval=150)
        self._counts_timer.timeout.connect(self._refresh_counts)

    def _restore_window_state(self) -> None:
        geometry, state = saved_window()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        # Dock layout applies while a project is open; the start page shows no docks.
        self._dock_state = state

    def save_window_state(self) -> None:
        state = self.saveState() if self.project is not None else self._dock_state
        save_window(self.saveGeometry(), state)

    def _show_docks(self) -> None:
        if self._dock_state is None or not self.restoreState(self._dock_state):
            for dock in (self.browser, self.class_dock, self.objects):
                dock.show()

    # --- project lifecycle -----------------------------------------------------------

    def open_project(self, project: Project) -> None:
        """Show `project` (the window owns it from now on and closes it)."""
        self.close_project()
        self.project = project
        self.bridge = ProjectBridge(project.events, self)
        for name, slot in (("images_changed", self._on_images_changed),
                           ("annotations_changed", self._on_annotations_changed),
                           ("classes_changed", self._on_classes_changed),
                           ("undo_changed", self._on_undo_changed)):  # fmt: skip
            self.bridge.connect_queued(name, slot)
        for panel in self._panels:
            panel.set_project(project)
        self.canvas.set_current_class(self.class_dock.current_class)
        add_recent(project.path)
        # A folder's own project (FOLDER/.studio) is known by the folder's name.
        name = project.path.parent.name if project.path.name == ".studio" else project.path.name
        self.setWindowTitle(f"{name} — Studio")
        self._show_docks()
        self._update_empty_hint()
        enable_for_project(self.actions, True)
        self._on_undo_changed()
        ids = self.browser.ids()
        last = project.get_setting("last_image")
        first = last if last is not None and self.browser.model.row_of(last) is not None else None
        if first is None and ids:
            first = ids[0]
        if first is not None:
            self.show_image(first)
        self._refresh_counts()
        self.canvas.setFocus()
        self.project_changed.emit(project)

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
        for panel in reversed(self._panels):
            panel.set_project(None)
        self._shown_id = None
        self.project.close()
        self.project = None
        self.project_changed.emit(None)
        self._show_start_page()

    def _show_start_page(self) -> None:
        self.setWindowTitle("Studio")
        self.start_page.reload()
        self.stack.setCurrentWidget(self.start_page)
        for dock in self._panels[1:]:
            dock.hide()
        enable_for_project(self.actions, False)
        self.status_bar.clear_labels()

    def _update_empty_hint(self) -> None:
        """A project without images shows what to do first instead of an empty canvas."""
        if self.project is not None:
            empty = self.project.image_count() == 0
            self.stack.setCurrentWidget(self.empty_hint if empty else self.canvas)

    def new_project_interactive(self) -> None:
        self.folders.new_project_interactive()  # creates the folder it is given

    def open_project_interactive(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project folder")
        if folder:
            self.open_path(folder)

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
        self.labelling.image_shown()
        ids, row = self.browser.ids(), self.browser.model.row_of(image_id)
        if row is not None:  # decode the neighbours while the user looks at this one
            self.canvas.prefetch(ids[row + 1 : row + 3] + ids[max(0, row - 1) : row])

    def step_image(self, delta: int) -> None:
        self.labelling.step(delta)

    def _on_image_shown(self, image_id: int) -> None:
        shown = self.status_bar.show_image_of(self.project, image_id)
        self.objects.show_image(image_id if shown else None)

    def _refresh_counts(self) -> None:
        """Counts over the whole project (a scan at 100k images): after bursts of edits,
        not on every image change."""
        if self.project is not None:
            self.status_bar.refresh_counts(self.project, self.current_image_id())
            self.class_dock.refresh()

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

    def pick_class_interactive(self) -> None:
        if self.project is None:
            return
        picker = ClassPicker(self.project.classes(), self)
        if picker.exec() and picker.chosen is not None:
            self.labelling.pick_class(picker.chosen)

    def edit_classes(self) -> None:
        if self.project is not None:
            ClassDialog(self.project, self).exec()

    # --- undo -------------------------------------------------------------------------

    def undo(self) -> None:
        self.labelling.undo_redo("undo")

    def redo(self) -> None:
        self.labelling.undo_redo("redo")

    def _on_undo_changed(self, _can_undo: bool = False, _can_redo: bool = False) -> None:
        # The stack as it is now: a queued event may be older than the last step.
        update_undo_actions(self.actions, self.project.undo_stack if self.project else None)

    # --- project events ---------------------------------------------------------------

    def _on_images_changed(self, _ids: object) -> None:
        # The image this window asked for, not the canvas's: the canvas has already let
        # go of a deleted image by the time this queued slot runs.
        current = self._shown_id
        self.browser.refresh_now()
        self._counts_timer.start()
        self._update_empty_hint()
        if self.project is not None:
            self.labelling.images_changed(current)

    def forget_image(self, image_id: int) -> None:
        """The shown image is gone and none takes its place: no name, no shapes."""
        self._shown_id = None
        self._on_image_shown(image_id)

    def _on_annotations_changed(self, ids: object) -> None:
        self.browser.refresh()
        self.objects.annotations_changed(ids)
        self._counts_timer.start()

    def _on_classes_changed(self) -> None:
        self.class_dock.refresh()
        self.browser.classes_changed()
        self.objects.reload()
        self.canvas.set_current_class(self.class_dock.current_class)

    def refresh_all(self) -> None:
        """After work done through another connection (imports): re-read everything."""
        if self.project is None:
            return
        # Every class listener (the canvas's colours, Inspect's, the docks) hears of new
        # classes: the work's own connection told none of them.
        self.project.events.classes_changed.emit()
        self.browser.refresh_now()
        self._refresh_counts()
        self._update_empty_hint()
        if self.current_image_id() is None and self.browser.ids():
            self.show_image(self.browser.ids()[0])
        elif self.current_image_id() is not None:
            self.canvas.show_image(self.current_image_id())

    # --- look and panels --------------------------------------------------------------

    def show_training(self) -> None:
        """The Train button: show the training panel and bring it to the front."""
        self.train_dock.show()
        self.train_dock.raise_()

    # --- dialogs, drops, closing ------------------------------------------------------

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self.shortcuts, self).exec()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_window_state()
        self.close_project()
        self.inspect_dock.shutdown()
        self.analysis_dock.shutdown()
        self.canvas.shutdown()
        super().closeEvent(event)
