"""One run, one trainer: a second process asked to train a run that a live process on
this machine trains is refused before it records anything (two resumes at once both
trained the run, overwrote each other's checkpoints and doubled its metric rows)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from studio.core.errors import StudioError
from studio.ml.run.pidfile import PID_FILE, claim_run, read_pid_file
from studio.ml.run.process import execute_run
from studio.ml.run.procinfo import process_start_time
from studio.ml.run.runs import create_run
from tests.ml.conftest import tiny_config


def _held_by(run_dir, pid: int) -> None:
    info = {"pid": pid, "host": socket.gethostname(), "start_time": process_start_time(pid)}
    (run_dir / PID_FILE).write_text(json.dumps(info))


def test_a_run_trained_elsewhere_is_refused_and_left_alone(project):
    run = create_run(project, tiny_config(epochs=1))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _held_by(run.dir, other.pid)
        before = project.run(run.id)
        with pytest.raises(StudioError, match=f"is being trained by process {other.pid}"):
            execute_run(project, run.id)
        after = project.run(run.id)
        assert (after.status, after.error) == (before.status, before.error)  # not "failed"
        assert read_pid_file(run.dir)["pid"] == other.pid  # its claim stands
    finally:
        other.kill()
        other.wait()
    # The other process is gone: its stale claim is taken over.
    claim_run(run.dir)
    assert read_pid_file(run.dir)["pid"] == os.getpid()


def test_a_fresh_claim_creates_the_pid_file(tmp_path):
    claim_run(tmp_path)
    assert read_pid_file(tmp_path)["pid"] == os.getpid()
    claim_run(tmp_path)  # this process again: no refusal
