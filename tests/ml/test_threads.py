"""A CPU run uses the cores other programs leave free: with one of two cores busy
elsewhere, a low-priority step on 2 threads took 12.8 s against 1.0 s on 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from studio.ml.train.threads import CHECK_EVERY_S, CpuSample, FitThreadsToFreeCores, sample_cpu
from studio.ml.train.threads import threads_for as fit


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_threads_are_the_cores_left_free():
    assert [fit(2, 2, others) for others in (0.0, 0.3, 0.6, 1.0, 1.5, 2.0)] == [2, 2, 1, 1, 1, 1]
    assert fit(1, 2, 0.0) == 1  # never more than the run started with (OMP_NUM_THREADS)
    assert [fit(8, 8, others) for others in (0.5, 2.2, 7.9)] == [7, 6, 1]


class FakeCpu:
    """Samples as a machine whose other programs use `others` cores and this process one
    core per thread."""

    def __init__(self) -> None:
        self.at = self.busy = self.own = 0.0
        self.others = 0.0

    def advance(self, seconds: float) -> None:
        mine = torch.get_num_threads() * seconds
        self.at += seconds
        self.own += mine
        self.busy += mine + self.others * seconds

    def __call__(self) -> CpuSample:
        return CpuSample(self.at, self.busy, self.own)


def test_a_run_gives_up_a_core_while_another_program_uses_it(restore_threads):
    torch.set_num_threads(2)
    cpu = FakeCpu()
    cb = FitThreadsToFreeCores(sample=cpu, cores=2, clock=lambda: cpu.at)
    cb.on_fit_start(None)
    threads = []
    for others in [0.0, 0.0, 1.0, 1.0, 0.9, 0.1, 0.0]:
        cpu.others = others
        for _ in range(5):  # steps of a second: a check every CHECK_EVERY_S
            cpu.advance(1.0)
            cb.on_iteration_end(None, None)
        threads.append(torch.get_num_threads())
    assert CHECK_EVERY_S == 5.0
    assert threads == [2, 2, 1, 1, 1, 2, 2]
    cpu.others = 1.0
    for _ in range(5):
        cpu.advance(1.0)
        cb.on_iteration_end(None, None)
    assert torch.get_num_threads() == 1
    cb.on_fit_end(None, None)
    assert torch.get_num_threads() == 2  # the run's own threads back


def test_the_measure_sees_a_busy_program(restore_threads):
    # Another program: not a child of this process (whose children count as its own,
    # as DataLoader workers are), so started through a shell that exits at once.
    spin = f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    pid = int(subprocess.run(["sh", "-c", spin], capture_output=True, text=True).stdout)
    try:
        time.sleep(0.5)
        first = sample_cpu()
        time.sleep(2.0)
        second = sample_cpu()
    finally:
        os.kill(pid, signal.SIGKILL)
    others = ((second.busy - first.busy) - (second.own - first.own)) / (second.at - first.at)
    assert others > 0.8, others  # the spinner's core (and whatever else runs here)
