"""The project's repositories, one per table, each owning its SQL and its events.

`Project` (studio.core.project) is a thin facade over a `Store`; the undo commands
take a `Store` so that they need not know the facade.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from studio.core.events import ProjectEvents
from studio.core.store.annotations import AnnotationRepo
from studio.core.store.classes import ClassRepo
from studio.core.store.folder import ProjectFolder
from studio.core.store.images import ImageRepo
from studio.core.store.predictions import PredictionRepo
from studio.core.store.runs import RunRepo
from studio.core.store.settings import SettingsRepo


@dataclass(frozen=True)
class Store:
    """The repositories of one open project, sharing its engine and events."""

    folder: ProjectFolder
    engine: Engine
    events: ProjectEvents
    settings: SettingsRepo
    classes: ClassRepo
    images: ImageRepo
    annotations: AnnotationRepo
    runs: RunRepo
    predictions: PredictionRepo

    @classmethod
    def open(cls, folder: ProjectFolder, engine: Engine, events: ProjectEvents) -> Store:
        settings = SettingsRepo(engine)
        return cls(
            folder=folder,
            engine=engine,
            events=events,
            settings=settings,
            classes=ClassRepo(engine, events),
            images=ImageRepo(engine, events, folder),
            annotations=AnnotationRepo(engine, events),
            runs=RunRepo(engine, events, folder, settings),
            predictions=PredictionRepo(engine, events),
        )


__all__ = [
    "AnnotationRepo",
    "ClassRepo",
    "ImageRepo",
    "PredictionRepo",
    "ProjectFolder",
    "RunRepo",
    "SettingsRepo",
    "Store",
]
