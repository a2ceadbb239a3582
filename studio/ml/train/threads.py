"""CPU threads that fit the cores other programs leave free.

torch runs a step's operators on as many threads as the machine has cores, and every
parallel operator waits for its slowest thread. When another program keeps a core busy,
the thread that shares that core is the slowest, and a training process the window
started at a lower priority (procinfo.TRAIN_NICENESS) gets a tenth of it: on the 2-core
development machine, with one other busy process, a step of the CPU detector took 12.8 s
on 2 threads and 1.0 s on 1. `FitThreadsToFreeCores` measures every few seconds how many
cores the rest of the machine keeps busy and runs on the cores left (at least one, at
most the threads the run started with, which OMP_NUM_THREADS may have capped).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil
import torch

from studio.ml.train.callbacks import Callback, Step
from studio.ml.train.state import TrainResult

if TYPE_CHECKING:
    from studio.ml.train.trainer import Trainer

CHECK_EVERY_S = 5.0
# Other programs' use, in cores, from which a core counts as taken: a core busy 40% of
# the time already stalls a thread on it often enough to slow every step.
TAKEN_FROM = 0.4


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float  # seconds (monotonic)
    busy: float  # CPU seconds the whole machine has been busy, all cores together
    own: float  # CPU seconds of this process and its live children (DataLoader workers)


def sample_cpu() -> CpuSample:
    t = psutil.cpu_times()
    # Linux counts guest time in user and nice already; idle and iowait are not busy.
    busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    me = psutil.Process()
    own = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            own += sum(child.cpu_times()[:2])
        except psutil.Error:  # exited meanwhile
            pass
    return CpuSample(time.monotonic(), busy, own)


def threads_for(cap: int, cores: int, others: float) -> int:
    """Threads to run on when other programs keep `others` cores busy."""
    taken = max(0, math.floor(others + 1 - TAKEN_FROM))
    return max(1, min(cap, cores - taken))


class FitThreadsToFreeCores(Callback):
    """Every CHECK_EVERY_S seconds of a CPU run, sets torch's threads to the cores that
    other programs left free over that time; the run's own threads come back at its end."""

    def __init__(
        self,
        sample: Callable[[], CpuSample] = sample_cpu,
        cores: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sample = sample
        self.clock = clock  # the samples' own clock (CpuSample.at)
        self.cores = cores or os.cpu_count() or 1
        self.cap = 1
        self.last: CpuSample | None = None
        self.others = 0.0  # cores the rest of the machine kept busy at the last check

    def on_fit_start(self, trainer: Trainer) -> None:
        self.cap = torch.get_num_threads()
        self.last = self.sample()

    def on_iteration_end(self, trainer: Trainer, step: Step) -> None:
        last = self.last
        # Sampled only when a check is due: reading every process's CPU time at every
        # step would be work in the training loop for nothing.
        if last is None or self.clock() - last.at < CHECK_EVERY_S:
            return
        self.last = now = self.sample()
        wall = now.at - last.at
        self.others = max(0.0, ((now.busy - last.busy) - (now.own - last.own)) / wall)
        threads = threads_for(self.cap, self.cores, self.others)
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        torch.set_num_threads(self.cap)
