"""The progress bar after a run: its end text shows (a busy bar's value of -1 made Qt
draw none), the speed and ETA are cleared, and a resumed run's budget counts the time
its earlier sessions used."""

from __future__ import annotations

from studio.ml.run.session import LiveRun, TrainingSession
from studio.ml.train.messages import Finished, Started, Stopped
from studio.ui.training.run_progress import RunProgress, stats_text


def test_the_end_text_shows_and_the_numbers_clear(qtbot):
    w = RunProgress()
    qtbot.addWidget(w)
    w.show_words("starting…", busy=True)  # a resume without a known length
    w.stats.setText("8.6 img/s · ETA 45 s · RAM 1 GB")
    w.show_end(Finished(0.5, "bbox/AP", 3, iterations=30), "no stalls")
    assert w.bar.value() == w.bar.maximum() >= w.bar.minimum()
    assert w.bar.text().startswith("finished")
    assert w.stats.text() == stats_text(None)
    w.show_words("starting…", busy=True)
    w.show_end(Stopped(1, 10), "no stalls")
    assert (
        w.bar.value() == 0 and w.bar.text() == "stopped after 1 complete epoch: Resume continues it"
    )


def test_a_resumed_runs_budget_counts_its_earlier_sessions():
    now = [1000.0]
    session = TrainingSession(clock=lambda: now[0])
    session._renice_child = lambda process: None  # no child here
    run = LiveRun(1, True, process=None, budget=600.0)  # type: ignore[arg-type]
    session._handle(run, Started(1, 10, 2, elapsed=200.0))
    now[0] += 50.0
    assert run.budget_left(now[0]) == 350.0  # 600 - 200 before - 50 now
