"""Which runs are really training: pid files, and reconciling the database with them.

A training process writes ``train.pid`` (pid, host, start time) into its run folder and
removes it when it ends. A run the database calls running whose process is gone (killed,
crashed, the machine rebooted) is marked failed by `reconcile_runs`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.ml.run.procinfo import pid_alive, process_start_time

PID_FILE = "train.pid"
INTERRUPTED = "interrupted: the training process ended without finishing (killed or crashed)"


def write_pid_file(run_dir: Path) -> None:
    """Record this process as the run's trainer (atomically; a temporary file of its own,
    so that two processes never replace each other's)."""
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start_time": process_start_time(os.getpid()),
    }
    tmp = run_dir / f"{PID_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, run_dir / PID_FILE)


LOCK_FILE = "train.lock"


class RunClaim:
    """This process's hold on a run (`claim_run`): an OS lock on the run's `train.lock`,
    which the system releases when the process ends, however it ends."""

    def __init__(self, fd: int):
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _unlock(fd)
            os.close(fd)


def claim_run(run_dir: Path) -> RunClaim:
    """Become the run's one trainer, or raise `StudioError` when another process holds
    it (two resumes at once both trained it, overwriting each other's checkpoints and
    doubling its metric rows). Held until `release()` or the end of the process."""
    fd = os.open(run_dir / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        _lock(fd)
    except OSError:
        os.close(fd)
        other = read_pid_file(run_dir) or {}
        who = f"process {other['pid']}" if other.get("pid") else "another process"
        raise StudioError(
            f"{run_dir.name} is being trained by {who}: stop it first, or wait"
        ) from None
    write_pid_file(run_dir)
    return RunClaim(fd)


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # raises OSError when held

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises OSError when held

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_pid_file(run_dir: Path) -> dict[str, Any] | None:
    """{"pid", "host", "start_time"} of the run's trainer, or None without a readable file."""
    try:
        data = json.loads((run_dir / PID_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_pid_file(run_dir: Path) -> None:
    try:
        (run_dir / PID_FILE).unlink()
    except OSError:
        pass


def reconcile_runs(project: Project) -> list[int]:
    """Mark runs recorded as running (or queued with a process) whose training process
    no longer exists on this machine as failed ("interrupted ..."). Returns their ids.

    A run started on another machine (a shared folder) is left alone: its pid means
    nothing here. Resume works for such runs from their last.pt."""
    host = socket.gethostname()
    fixed = []
    for run in project.runs():
        if run.status not in (RunStatus.RUNNING, RunStatus.QUEUED):
            continue
        info = read_pid_file(run.dir)
        if info is None:
            pid = run.config.get("pid")
            if pid is None:
                continue  # queued, never started: nothing to reconcile
            info = {"pid": pid, "host": run.config.get("host")}
        if info.get("host") not in (None, host):
            continue
        if pid_alive(int(info.get("pid") or 0), info.get("start_time")):
            continue
        project.update_run(run.id, status=RunStatus.FAILED, error=INTERRUPTED)
        remove_pid_file(run.dir)
        fixed.append(run.id)
    return fixed
