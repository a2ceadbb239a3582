"""The Analysis dock: the zoom-scale analysis and the activation maps, one tab each.

The window wires it (see `MainWindow._build_analysis_dock`): `attach_canvas(canvas)` for
the canvas's "heatmap" layer, the canvas's `image_shown` to `show_image`, and
`objects_chosen` (a list of `work.ObjectRef`, from a histogram bar) to the window's
`_show_objects`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDockWidget, QTabWidget, QWidget

from studio.core.project import Project
from studio.ui.analysis.cam_panel import CamPanel
from studio.ui.analysis.zoom_panel import ZoomPanel
from studio.ui.common.bridge import ProjectBridge


class AnalysisDock(QDockWidget):
    objects_chosen = Signal(object)  # list[ObjectRef]
    message = Signal(str)  # one line for the status bar

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Analysis", parent)
        self.setObjectName("analysis_dock")
        self._bridge: ProjectBridge | None = None
        self.tabs = QTabWidget()
        self.zoom = ZoomPanel()
        self.cam = CamPanel()
        self.tabs.addTab(self.zoom, "Zoom scales")
        self.tabs.addTab(self.cam, "Activation maps")
        self.cam.set_active(False)  # until the dock shows its tab
        self.tabs.currentChanged.connect(self._follow_cam)
        self.visibilityChanged.connect(self._follow_cam)
        self.zoom.objects_chosen.connect(self.objects_chosen)
        for panel in (self.zoom, self.cam, self.zoom.measured):
            panel.message.connect(self.message)
        self.setWidget(self.tabs)

    def attach_canvas(self, canvas: Any) -> None:
        """Draw activation maps on `canvas` (its "heatmap" layer)."""
        self.cam.attach_canvas(canvas)

    def set_project(self, project: Project | None) -> None:
        if self._bridge is not None:
            self._bridge.disconnect_project()
            self._bridge = None
        self.zoom.set_project(project)
        self.cam.set_project(project)
        if project is not None:
            self._bridge = ProjectBridge(project.events)
            self._bridge.connect_queued("runs_changed", lambda _r: self._runs_changed())

    def _runs_changed(self) -> None:
        self.zoom.reload_runs()
        self.cam.reload_runs()

    def show_image(self, image_id: int | None) -> None:
        """The window shows image `image_id`: its activation map, when that tab is open."""
        self.cam.show_image(image_id)

    def _follow_cam(self, *_args: object) -> None:
        # The map belongs to the Activation maps tab of a dock in sight: hiding the dock
        # or leaving the tab takes the map off the canvas and stops computing maps;
        # coming back computes the image shown's (from the cache).
        self.cam.set_active(self.isVisible() and self.tabs.currentWidget() is self.cam)

    def shutdown(self) -> None:
        self.zoom.shutdown()
        self.cam.shutdown()
        if self._bridge is not None:
            self._bridge.disconnect_project()
            self._bridge = None
