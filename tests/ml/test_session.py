"""The training session's state machine, without Qt: fake processes and a fake clock for
every transition, then one tiny run in a real spawned process."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.kinds import RunStatus
from studio.ml.run import session as session_mod
from studio.ml.run.session import (
    KILL_AFTER_S,
    NoticeLevel,
    SessionError,
    SessionState,
    TrainingSession,
    check_and_create_run,
)
from studio.ml.train.messages import (
    TERMINAL,
    EpochMetrics,
    Failed,
    Finished,
    Iteration,
    Message,
    Notice,
    Started,
    Stopped,
)
from tests.ml.conftest import TINY, tiny_config

S = SessionState
PID = 4242


class FakeProcess:
    """A training child as the session sees it: messages are queued by the test."""

    def __init__(self, project_dir: Path, run_id: int, resume: bool):
        self.project_dir, self.run_id, self.resume = project_dir, run_id, resume
        self.pid: int | None = None
        self.inbox: list[Message] = []
        self.finished: Message | None = None
        self.alive = False
        self.fail_start: OSError | None = None
        self.stop_requested = self.killed = self.closed = False

    def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self.pid, self.alive = PID, True

    def is_alive(self) -> bool:
        return self.alive

    def poll(self, timeout: float = 0.0) -> list[Message]:
        out, self.inbox = self.inbox, []
        if self.finished is None and not out and not self.alive:  # died without a word
            out = [Failed("the training process died unexpectedly (exit code -9)")]
        for m in out:
            if isinstance(m, TERMINAL):
                self.finished = m
        return out

    def request_stop(self) -> None:
        self.stop_requested = True

    def kill(self) -> None:
        self.killed, self.alive = True, False

    def wait(self, timeout: float | None = None) -> Message:
        self.alive = False
        self.finished = self.finished or Stopped(epoch=0)
        return self.finished

    def close(self) -> None:
        self.closed = True


class Harness:
    """A session wired to fakes, recording what it says."""

    def __init__(self) -> None:
        self.now = 100.0
        self.spawned: list[FakeProcess] = []
        self.reniced: list[int] = []
        self.memory_reads = 0
        self.fail_next_start: OSError | None = None
        self.session = TrainingSession(
            spawn=self._spawn,
            clock=lambda: self.now,
            read_memory=self._read_memory,
            renice=self.reniced.append,
        )
        self.states: list[SessionState] = []
        self.notices: list[tuple[str, str]] = []
        self.metrics: list[Message] = []
        self.started: list[Started] = []
        self.ended: list[tuple[int, str, Message | None]] = []
        s = self.session
        s.state_changed.connect(self.states.append)
        s.notice.connect(lambda text, level: self.notices.append((text, level)))
        s.metrics.connect(self.metrics.append)
        s.started.connect(self.started.append)
        s.ended.connect(lambda rid, status, msg: self.ended.append((rid, status, msg)))

    def _spawn(self, project_dir: Path, run_id: int, resume: bool) -> FakeProcess:
        p = FakeProcess(project_dir, run_id, resume)
        p.fail_start, self.fail_next_start = self.fail_next_start, None
        self.spawned.append(p)
        return p

    def _read_memory(self, pid: int | None) -> int | None:
        self.memory_reads += 1
        return 123 * 2**20 if pid else None

    @property
    def process(self) -> FakeProcess:
        return self.spawned[-1]

    def send(self, *msgs: Message) -> None:
        self.process.inbox += msgs
        self.session.poll()

    def start(self, run_id: int = 7, **kw) -> FakeProcess:
        assert self.session.start(Path("/p"), run_id, **kw)
        return self.process


STARTED = Started(run_id=7, num_train=10, num_val=2, warnings=["few images"], epochs=2,
                  iters_per_epoch=5)  # fmt: skip
ITER = Iteration(epoch=0, iteration=1, losses={"loss": 1.0}, lr=1e-3, images_per_s=3.0)


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_run_from_the_checks_to_its_end(h):
    s = h.session
    assert s.state == S.IDLE and s.can_start and not s.is_training
    s.begin_check()
    assert s.state == S.CHECKING and not s.can_start
    p = h.start(budget=60.0)
    assert (p.project_dir, p.run_id, p.resume) == (Path("/p"), 7, False)
    assert s.state == S.STARTING and s.is_training and s.can_stop
    assert h.reniced == [PID] and s.pid == PID and s.process is p
    h.send(STARTED, ITER)
    assert s.state == S.RUNNING
    assert h.reniced == [PID, PID]  # again: threads it started before the first renice
    assert h.started == [STARTED] and h.metrics == [ITER]
    assert h.notices == [("few images", NoticeLevel.WARNING)]
    assert s.run.last_iteration == ITER and s.run.memory == 123 * 2**20
    assert s.run.budget_left(h.now + 10) == 50.0
    h.send(EpochMetrics(epoch=0, metrics={"bbox/AP": 0.1}), Notice("skipped a step"))
    assert isinstance(h.metrics[-1], EpochMetrics)
    assert h.notices[-1] == ("skipped a step", NoticeLevel.WARNING)
    done = Finished(best_metric=0.2, best_metric_name="bbox/AP", epoch=2)
    h.send(done)
    assert s.state == S.RUNNING and h.ended == []  # said it ended, has not exited yet
    p.alive = False
    s.poll()
    assert s.state == S.FINISHED and p.closed and not s.is_training and s.can_start
    assert h.ended == [(7, RunStatus.FINISHED, done)]
    assert h.states == [S.CHECKING, S.STARTING, S.RUNNING, S.FINISHED]
    s.poll()  # nothing more to read
    assert h.ended == [(7, RunStatus.FINISHED, done)]


def test_memory_is_read_once_a_second(h):
    h.start()
    for _ in range(5):
        h.session.poll()
        h.now += 0.15
    assert h.memory_reads == 1
    h.now += 1.0
    h.session.poll()
    assert h.memory_reads == 2


def test_stop_waits_for_the_checkpoint_then_offers_kill(h):
    s = h.session
    p = h.start()
    h.send(STARTED)
    s.stop()
    assert s.state == S.STOPPING and p.stop_requested and not s.can_stop
    s.stop()  # a second press while the stop is pending does nothing
    assert s.state == S.STOPPING and not p.killed
    h.send(STARTED)  # a Started after the stop was asked keeps it stopping
    assert s.state == S.STOPPING
    h.now += KILL_AFTER_S + 1
    s.poll()
    assert s.state == S.STOP_OVERDUE and s.can_stop
    s.stop()
    assert s.state == S.KILLING and p.killed
    s.stop()  # Kill again: harmless
    assert s.state == S.KILLING
    s.poll()  # dead without a final message
    assert s.state == S.FAILED
    assert h.ended[0][:2] == (7, RunStatus.FAILED)
    assert ("the training process died unexpectedly (exit code -9)", "error") in h.notices


def test_a_late_press_kills_without_waiting_for_a_poll(h):
    s = h.session
    p = h.start()
    s.stop()
    h.now += KILL_AFTER_S + 1
    s.stop()
    assert p.killed and s.state == S.KILLING
    assert h.states[-3:] == [S.STOPPING, S.STOP_OVERDUE, S.KILLING]


def test_a_stopped_run_ends_stopped(h):
    s = h.session
    p = h.start()
    h.send(STARTED)
    s.stop()
    p.alive = False
    h.send(Stopped(epoch=1, iteration=6))
    assert s.state == S.STOPPED and h.ended[0][1] == RunStatus.STOPPED


def test_a_run_that_ended_but_does_not_exit_is_killed(h):
    s = h.session
    p = h.start()
    done = Finished(best_metric=None, epoch=2)
    h.send(STARTED, done)
    h.now += KILL_AFTER_S / 2
    s.poll()
    assert not p.killed
    h.now += KILL_AFTER_S
    s.poll()
    assert p.killed and s.state == S.RUNNING  # the stop button is not involved
    s.poll()
    assert s.state == S.FINISHED and h.ended == [(7, RunStatus.FINISHED, done)]


def test_failed_message_is_an_error_notice(h):
    p = h.start()
    p.alive = False
    h.send(Failed("boom: this model always fails"))
    assert h.notices == [("boom: this model always fails", NoticeLevel.ERROR)]
    assert h.session.state == S.FAILED


def test_a_process_that_cannot_start(h):
    s = h.session
    s.begin_check()
    h.fail_next_start = OSError("too many processes")
    assert s.start(Path("/p"), 7) is False
    assert s.state == S.NOT_STARTED and s.can_start and h.reniced == []
    assert h.notices == [("The training process cannot start: too many processes", "error")]
    h.fail_next_start = OSError("still")
    assert s.start(Path("/p"), 7, resume=True) is False  # from resting: the same
    assert s.state == S.NOT_STARTED
    h.start(resume=True)
    assert s.state == S.STARTING and h.process.resume


def test_refused_checks(h):
    s = h.session
    s.begin_check()
    s.check_failed()
    assert s.state == S.NOT_STARTED and s.can_start
    s.begin_check()  # Train again
    assert s.state == S.CHECKING


def test_invalid_transitions_raise(h):
    s = h.session
    with pytest.raises(SessionError):
        s.stop()  # nothing runs
    with pytest.raises(SessionError):
        s.check_failed()  # no check runs
    h.start()
    with pytest.raises(SessionError):
        s.start(Path("/p"), 8)  # one run at a time
    with pytest.raises(SessionError):
        s.begin_check()
    assert s.state == S.STARTING and len(h.spawned) == 1


def test_shutdown_leaves_the_run_to_stop_and_waits_at_exit(h, monkeypatch):
    hooks = []
    monkeypatch.setattr(session_mod.atexit, "register", hooks.append)
    s = h.session
    first = h.start()
    h.send(STARTED)
    s.shutdown()
    assert first.stop_requested and not first.killed and not first.closed
    assert s.state == S.IDLE and not s.is_training and s.left_running == [first]
    assert h.ended == []  # the window no longer watches it
    second = h.start(run_id=8)
    s.shutdown()
    assert s.left_running == [first, second]
    assert hooks == [s.wait_for_left_running]  # registered once
    s.wait_for_left_running()
    assert s.left_running == [] and first.closed and second.closed
    assert not first.alive and not first.killed  # waited for, not killed
    s.shutdown()  # idle: nothing to do
    assert s.state == S.IDLE and len(hooks) == 1


def test_shutdown_forgets_a_check(h):
    h.session.begin_check()
    h.session.shutdown()
    assert h.session.state == S.IDLE and h.session.left_running == []


# --- with the real child process ---------------------------------------------------------


def test_check_and_create_run(project):
    settings = tiny_config(epochs=1).to_dict()
    report, run_id = check_and_create_run(project.path, settings)
    assert report.ok and run_id is not None
    assert project.run(run_id).status == RunStatus.QUEUED and project.run(run_id).model == TINY
    project.delete_annotations([a.id for a in project.annotations()])
    project.set_status(project.image_ids(), "new")
    report, run_id = check_and_create_run(project.path, settings)
    assert run_id is None and "No labelled images" in report.errors[0]


def test_a_tiny_run_in_a_real_process(project):
    import time

    from studio.ml.run.process import create_run

    run = create_run(project, tiny_config(epochs=1))
    session = TrainingSession()
    ended: list[tuple[int, str]] = []
    session.ended.connect(lambda rid, status, _msg: ended.append((rid, status)))
    assert session.start(project.path, run.id)
    deadline = time.monotonic() + 240
    while session.is_training and time.monotonic() < deadline:
        session.poll()
        time.sleep(0.05)
    assert ended == [(run.id, RunStatus.FINISHED)], session.state
    assert session.state == S.FINISHED
    assert session.run.started is not None and session.run.last_iteration is not None
    assert project.run(run.id).status == RunStatus.FINISHED
