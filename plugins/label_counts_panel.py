"""Example Studio plugin: a dock panel listing how many shapes each class has.

Try it without installing anything:

    STUDIO_PLUGIN_PATH=plugins studio --demo

A panel plugin registers a factory; the window calls it once with itself and docks the
widget it returns. Qt is imported inside the factory, so the command line, which loads
the same plugins, never needs it.
"""

from __future__ import annotations


def build_panel(window):
    from PySide6.QtWidgets import QListWidget

    view = QListWidget()
    view.setObjectName("label_counts")

    def refresh(*_args) -> None:
        view.clear()
        project = getattr(window, "project", None)
        if project is None:
            return
        counts = project.class_counts()
        for cls in project.classes():
            view.addItem(f"{cls.name}: {counts.get(cls.id, 0)}")

    window.project_changed.connect(refresh)
    refresh()
    return view


def register(api) -> None:
    api.add_panel("Label counts", build_panel, area="right")
