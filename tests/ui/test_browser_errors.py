"""The model's errors in the browser: per-image TP / FP / missed counts on the rows equal
to an independent pycocotools count, the Errors filter, the error sort keys, counts that
follow a fixed label at once, and a confusion cell that filters the browser to its
images until the "Showing N images from Inspect ✕" button is clicked.

Predictions are stored on a run row (no training), built per image so that every count
is known by construction and differs between images."""

from __future__ import annotations

import contextlib
import io
import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox

from studio.core import browse
from studio.core.project import Project
from studio.ml.analysis.per_image import ErrorSort
from studio.ui.analysis.work import evaluation_images
from studio.ui.browser.model import ErrorsRole

SCORE = 0.3


@pytest.fixture
def window(qtbot, small_demo_template, tmp_path):
    from studio.ui.main_window import MainWindow

    dst = tmp_path / "project"
    shutil.copytree(small_demo_template, dst)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    w.open_project(Project.open(dst))
    w.inspect_dock.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    w.browser.thumbs.wait(5000)
    QThreadPool.globalInstance().waitForDone(30_000)


def varied_run(p: Project) -> tuple[int, dict[int, list[tuple]]]:
    """A run whose predictions differ by image (k: the image's position by id): k % 4 ==
    0 every label found (0.9); 1 the first label not predicted (missed); 2 the first label
    predicted as the next class (0.7: a confusion, FP + missed); 3 every label found plus
    k // 4 + 1 boxes on background (0.6: FPs). Every image also gets a faint box (0.1,
    under the slider). Returns the run id and the background boxes per image."""
    run = p.create_run("varied", "none", "detection", {})
    classes = [c.id for c in p.classes()]
    rows, background = [], {}
    for k, im in enumerate(sorted(p.images(), key=lambda im: im.id)):
        for j, a in enumerate(p.annotations(image_ids=[im.id])):
            x, y, w, h = a.bbox
            if j == 0 and k % 4 == 1:
                continue
            if j == 0 and k % 4 == 2:
                other = classes[(classes.index(a.class_id) + 1) % len(classes)]
                rows.append(dict(image_id=im.id, class_id=other, bbox=(x, y, w, h), score=0.7))
                continue
            rows.append(dict(image_id=im.id, class_id=a.class_id, bbox=(x + 1, y + 1, w, h),
                             score=0.9))  # fmt: skip
        if k % 4 == 3:
            boxes = [(classes[0], (2.0 + 9 * n, 2.0, 6.0, 6.0)) for n in range(k // 4 + 1)]
            background[im.id] = boxes
            rows += [dict(image_id=im.id, class_id=c, bbox=b, score=0.6) for c, b in boxes]
        rows.append(dict(image_id=im.id, class_id=classes[1], bbox=(200, 150, 30, 30), score=0.1))
    p.replace_predictions(run.id, rows)
    return run.id, background


def coco_per_image(gt: dict, rows: list[dict], iou: float, score: float) -> dict[int, tuple]:
    """Image id -> (tp, fp, fn) from pycocotools' own evalImgs (dtMatches / gtMatches at
    `iou`, area "all", 100 detections), counting detections scoring at least `score`."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dt = coco.loadRes([{"image_id": r["image_id"], "category_id": r["class_id"],
                            "bbox": list(r["bbox"]), "score": r["score"]} for r in rows])  # fmt: skip
        ev = COCOeval(coco, dt, "bbox")
        ev.params.iouThrs = np.array([iou])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
    out = {im["id"]: [0, 0, 0] for im in gt["images"]}
    for e in ev.evalImgs:
        if e is None:
            continue
        c = out[e["image_id"]]
        on = np.asarray(e["dtScores"]) >= score
        dm, di = np.asarray(e["dtMatches"])[0], np.asarray(e["dtIgnore"])[0].astype(bool)
        c[0] += int(((dm > 0) & ~di & on).sum())
        c[1] += int(((dm == 0) & ~di & on).sum())
        # A label counts as found only by a detection at or above the score.
        found = {int(d) for d, s in zip(dm, np.asarray(e["dtScores"]), strict=True)
                 if d > 0 and s >= score}  # fmt: skip
        gi = np.asarray(e["gtIgnore"]).astype(bool)
        c[2] += sum(1 for g, ig in zip(e["gtIds"], gi, strict=True) if not ig and g not in found)
    return {i: tuple(c) for i, c in out.items()}


def shown_counts(browser) -> dict[int, tuple | None]:
    """Image id -> (tp, fp, fn) as each browser row holds it (None: nothing shown)."""
    m = browser.model
    out = {}
    for r in range(m.rowCount()):
        e = m.index(r).data(ErrorsRole)
        out[m.id_at(r)] = None if e is None else (e.tp, e.fp, e.fn)
    return out


def pick(qtbot, combo: QComboBox, data: str) -> None:
    """Choose an item the way a person does: open the popup, click the item."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=2000)
    idx = view.model().index(combo.findData(data), 0)
    view.scrollTo(idx)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(idx).center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=2000)
    assert combo.currentData() == data


def evaluate_from_panel(qtbot, window) -> tuple[int, dict[int, list[tuple]]]:
    """Store `varied_run`, choose it, click Evaluate; wait for the browser's counts."""
    dock, p = window.inspect_dock, window.project
    run_id, background = varied_run(p)
    dock.bar.reload_runs()
    dock.bar.set_run(run_id)
    dock.eval_split.setCurrentText("all images")
    dock.slider.setValue(round(SCORE * 100))
    dock.tabs.setCurrentIndex(1)
    qtbot.mouseClick(dock.eval_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(window.browser.model.error_counts), timeout=30_000)
    return run_id, background


def test_counts_filter_sort_and_label_fix(window, qtbot):
    browser, p = window.browser, window.project
    assert not browser.errors.combo.isVisible()  # nothing to filter on before a report
    assert all(v is None for v in shown_counts(browser).values())
    run_id, background = evaluate_from_panel(qtbot, window)
    gt, rows = evaluation_images(p, run_id, None)
    want = coco_per_image(gt, rows, 0.5, SCORE)
    assert shown_counts(browser) == want
    assert len({c[:2] for c in want.values()}) >= 4  # the images really differ
    first = browser.model.index(0)
    tp, fp, fn = want[browser.model.id_at(0)]
    assert f"TP {tp} · FP {fp} · miss {fn}" in first.data(Qt.ItemDataRole.ToolTipRole)
    browser.view.grab()  # paints every visible row's counts (a paint error fails the test)
    browser.set_compact(True)
    browser.view.grab()
    assert browser.errors.combo.isVisible()

    pick(qtbot, browser.errors.combo, "false_positives")
    assert set(browser.ids()) == {i for i, c in want.items() if c[1] > 0}
    pick(qtbot, browser.errors.combo, "any")
    pick(qtbot, browser.sort_combo, ErrorSort.MISSED.value)
    fns = [want[i][2] for i in browser.ids()]
    assert len(browser.ids()) == p.image_count()
    assert fns == sorted(fns, reverse=True) and fns[0] > fns[-1]

    # The model found an object the labels missed: label it exactly there.
    image_id, boxes = next(iter(background.items()))
    class_id, box = boxes[0]
    p.add_annotation(image_id, class_id, "box", bbox=box)
    tp, fp, fn = want[image_id]
    qtbot.waitUntil(lambda: shown_counts(browser)[image_id] == (tp + 1, fp - 1, fn), timeout=10_000)
    p.undo()
    qtbot.waitUntil(lambda: shown_counts(browser)[image_id] == (tp, fp, fn), timeout=10_000)


def test_confusion_cell_filters_the_browser(window, qtbot):
    browser, dock, p = window.browser, window.inspect_dock, window.project
    evaluate_from_panel(qtbot, window)
    qtbot.waitUntil(lambda: dock.report is not None, timeout=30_000)
    classes = [c.id for c in p.classes()]
    # The confused images: k % 4 == 2, the first label's class is the cell's row.
    images = sorted(p.images(), key=lambda im: im.id)
    row = col = None
    expected: set[int] = set()
    for k, im in enumerate(images):
        anns = p.annotations(image_ids=[im.id])
        if k % 4 == 2 and anns:
            r = classes.index(anns[0].class_id)
            if row is None:
                row, col = r, (r + 1) % len(classes)
            if r == row:
                expected.add(im.id)
    assert expected
    table = dock.evaluation.confusion
    rect = table.visualItemRect(table.item(row, col))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: set(browser.ids()) == expected, timeout=5000)
    assert browser.errors.chip.isVisible()
    n = len(expected)
    assert browser.errors.chip.text().startswith(f"Showing {n} image{'s' * (n > 1)} from Inspect")
    assert window.current_image_id() in expected
    assert browser.current_id() == window.current_image_id()
    qtbot.mouseClick(browser.errors.chip, Qt.MouseButton.LeftButton)
    assert len(browser.ids()) == p.image_count()
    assert not browser.errors.chip.isVisible()


def test_counts_go_away_with_the_report(window, qtbot):
    browser = window.browser
    evaluate_from_panel(qtbot, window)
    pick(qtbot, browser.sort_combo, ErrorSort.DISAGREEMENT.value)
    qtbot.mouseClick(browser.desc_button, Qt.MouseButton.LeftButton)  # least first
    dis = [browser.model.error_counts[i].disagreement for i in browser.ids()]
    assert dis == sorted(dis) and dis[0] < dis[-1]
    pick(qtbot, browser.errors.combo, "correct")
    n_correct = len(browser.ids())
    assert 0 < n_correct < window.project.image_count()
    other = window.project.create_run("empty", "none", "detection", {})
    bar = window.inspect_dock.bar
    bar.reload_runs()
    pick(qtbot, bar.runs, other.id)  # another run: no report until evaluated
    assert all(v is None for v in shown_counts(browser).values())
    # Back to the name order, still reversed as the button says.
    assert browser.ids() == browse.query_images(window.project, sort="name", descending=True)
    assert browser.sort_combo.currentData() == "name"
    assert browser.sort_combo.findData(ErrorSort.MISSED.value) < 0
    assert not browser.errors.combo.isVisible()
