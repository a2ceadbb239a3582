"""What the operating system says about a training process, through psutil.

One place for it: the window reads memory and lowers the priority of its training
child, the run registry tells a live run from a crashed one by its pid file. Every
function is best-effort: a process that is gone, or not ours, changes nothing and
reads as absent.
"""

from __future__ import annotations

import psutil

# The training process runs at this niceness: on a 2-core laptop a training run at the
# window's priority takes every core and the event loop stutters; at nice 10 the kernel
# gives the window the CPU as soon as it wakes (CFS weight 110 vs 1024).
TRAIN_NICENESS = 10

_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError)


def process_start_time(pid: int) -> str | None:
    """When `pid` started (seconds since the epoch, as text), to tell a reused pid apart."""
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except _GONE:
        return None


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether process `pid` exists and is not a zombie, and, when `start_time` is given,
    is the same process that recorded it (see `process_start_time`)."""
    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        if start_time is not None and f"{proc.create_time():.2f}" != start_time:
            return False
    except psutil.AccessDenied:
        return True  # exists, owned by someone else
    except _GONE:
        return False
    return True


def process_rss(pid: int | None) -> int | None:
    """Resident memory in bytes of `pid` and its descendants (data-loader workers);
    None when the process is gone or cannot be read."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except _GONE:
        return None
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except _GONE:
            pass
    return total or None


def lower_priority(pid: int, niceness: int = TRAIN_NICENESS) -> int:
    """Lower process `pid` to `niceness` where it runs at a higher priority. On Linux
    niceness is per thread, so every thread is set; threads and processes it starts
    later inherit it. Returns how many threads changed (0 where nothing could be)."""
    try:
        # Linux threads have ids that psutil opens as processes; elsewhere only pid counts.
        tids = dict.fromkeys([pid, *(t.id for t in psutil.Process(pid).threads())])
    except _GONE:
        tids = {pid: None}
    changed = 0
    for tid in tids:
        try:
            proc = psutil.Process(tid)
            if proc.nice() < niceness:
                proc.nice(niceness)
                changed += 1
        except _GONE:
            pass
    return changed
