"""One run, one trainer: a process asked to train a run that another process holds is
refused before it records anything (two resumes at once both trained the run,
overwrote each other's checkpoints and doubled its metric rows). The hold is an OS lock,
released when its process ends however it ends."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from studio.core.errors import StudioError
from studio.ml.run.pidfile import claim_run, read_pid_file
from studio.ml.run.process import execute_run
from studio.ml.run.runs import create_run
from tests.ml.conftest import tiny_config

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from studio.ml.run.pidfile import claim_run\n"
    "claim_run(Path(sys.argv[1]))\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_run_another_process_holds_is_refused_and_left_alone(project):
    run = create_run(project, tiny_config(epochs=1))
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(run.dir)], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "held"
        before = project.run(run.id)
        with pytest.raises(StudioError, match=f"is being trained by process {other.pid}"):
            execute_run(project, run.id)
        after = project.run(run.id)
        assert (after.status, after.error) == (before.status, before.error)  # not "failed"
        assert read_pid_file(run.dir)["pid"] == other.pid  # its claim stands
    finally:
        other.kill()
        other.wait()
    # Its process is gone (killed: no clean-up ran), and so is its hold.
    claim = claim_run(run.dir)
    claim.release()


def test_of_two_claims_at_once_exactly_one_holds(tmp_path):
    def attempt(_: int) -> str:
        try:
            claim_run(tmp_path)
        except StudioError:
            return "refused"
        return "held"

    # Each claim opens its own descriptor: a lock is per open file, even in one process.
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count("held") == 1 and results.count("refused") == 7


def test_a_resume_of_a_held_run_leaves_its_config_alone(project, demo_dir, capsys):
    from studio.cli import main

    run = create_run(project, tiny_config(epochs=1))
    project.update_run(run.id, status="stopped")
    config = (run.dir / "config.json").read_text()
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(run.dir)], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "held"
        project.close()
        assert main(["train", str(demo_dir), "--resume", str(run.id), "--epochs", "5"]) == 2
        assert f"is being trained by process {other.pid}" in capsys.readouterr().err
        assert (run.dir / "config.json").read_text() == config
    finally:
        other.kill()
        other.wait()
