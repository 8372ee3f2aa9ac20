"""CPU-time measurements that survive a busy machine: CPU time, not wall time,
for anything that runs in one process, and medians of interleaved samples."""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence


def cpu_of(action: Callable[[], object]) -> float:
    """CPU seconds this process (all its threads) spent in ``action``."""
    start = time.process_time()
    action()
    return time.process_time() - start


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of_command(args: Sequence[str], stdin: bytes) -> float:
    """CPU seconds of a child process fed ``stdin`` (its output is thrown away)."""
    start = children_cpu()
    subprocess.run(args, input=stdin, stdout=subprocess.DEVNULL, check=True)
    return children_cpu() - start


def wall_seconds(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall seconds of each of ``repeat`` runs of ``action`` (for work that
    waits on another process: a server, the database)."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000
