"""A run's stored predictions (the predictions table), replaced as a whole."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Engine, delete, insert, select

from studio.core import schema as S
from studio.core.events import ProjectEvents
from studio.core.kinds import ShapeKind


class PredictionRepo:
    """Reads and replaces predictions; emits `runs_changed` with the run id."""

    def __init__(self, engine: Engine, events: ProjectEvents):
        self.engine = engine
        self.events = events

    def replace(
        self, run_id: int, rows: Sequence[dict], image_ids: Sequence[int] | None = None
    ) -> int:
        """Replace a run's stored predictions (only those of `image_ids` when given: the
        other images keep theirs); returns how many were stored. Rows: image_id,
        class_id, kind (default "box"), bbox (x, y, w, h in displayed pixels), polygons
        (optional), rle (optional), score."""
        payload = [
            {
                "run_id": run_id, "image_id": r["image_id"], "class_id": r["class_id"],
                "kind": str(r.get("kind", ShapeKind.BOX)),
                "x": float(r["bbox"][0]), "y": float(r["bbox"][1]),
                "w": float(r["bbox"][2]), "h": float(r["bbox"][3]),
                "polygons": json.dumps(r["polygons"]) if r.get("polygons") else None,
                "rle": json.dumps(r["rle"]) if r.get("rle") else None, "score": float(r["score"]),
            }
            for r in rows
        ]  # fmt: skip
        with self.engine.begin() as conn:
            gone = delete(S.Prediction).where(S.Prediction.run_id == run_id)
            if image_ids is not None:
                ids = list(image_ids)
                # SQLite caps bound parameters; delete in chunks.
                for i in range(0, len(ids), 900):
                    conn.execute(gone.where(S.Prediction.image_id.in_(ids[i : i + 900])))
            else:
                conn.execute(gone)
            if payload:
                conn.execute(insert(S.Prediction), payload)
        self.events.runs_changed.emit(run_id)
        return len(payload)

    def list(self, run_id: int, image_ids: Sequence[int] | None = None) -> list[dict]:
        """A run's predictions as dicts (the row keys `replace` takes, plus "id", the
        row's id), optionally for some images."""
        t = S.Prediction
        q = select(
            t.image_id, t.class_id, t.kind, t.x, t.y, t.w, t.h, t.polygons, t.rle, t.score, t.id
        )
        q = q.where(t.run_id == run_id)
        if image_ids is not None:
            q = q.where(t.image_id.in_(list(image_ids)))
        q = q.order_by(t.id)
        with self.engine.connect() as conn:
            return [
                {"image_id": r[0], "class_id": r[1], "kind": r[2], "bbox": (r[3], r[4], r[5], r[6]),
                 "polygons": json.loads(r[7]) if r[7] else None,
                 "rle": json.loads(r[8]) if r[8] else None, "score": r[9], "id": r[10]}
                for r in conn.execute(q)
            ]  # fmt: skip
