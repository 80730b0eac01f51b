"""Timing shared by the benchmarks: interleaved rounds, best batch, busy-machine fallback.

Rounds are interleaved (every library runs one batch per round, in a rotating
order) and the best batch per library counts, so machine noise hits all of them
alike. Time is read from ``perf_counter``; a batch during which the process lost
the CPU (its ``process_time`` well below its wall time) is run again, and a row
in which some library never got a clean batch is read from the CPU clock for
every library instead, so that one row always compares libraries on one clock.
"""

from __future__ import annotations

import gc
import itertools
import math
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUSY_STREAK",
    "MAX_ATTEMPTS",
    "MIN_CPU_SHARE",
    "Best",
    "Noise",
    "Settings",
    "measure",
    "measure_wall",
    "source_revision",
]

# A batch whose process CPU time is below this share of its wall time was
# descheduled (another process had the core), so its wall time measures the
# neighbour too: it is run again, up to MAX_ATTEMPTS times in a row. After
# BUSY_STREAK descheduled batches in a row the machine is taken to be busy and
# batches are no longer repeated (the row will be read from the CPU clock)
# until one comes out clean again.
MIN_CPU_SHARE = 0.95
MAX_ATTEMPTS = 3
BUSY_STREAK = 12


@dataclass(frozen=True)
class Settings:
    """How long to measure: interleaved rounds of batches of about ``batch_seconds``."""

    rounds: int
    batch_seconds: float


@dataclass
class Noise:
    """How many batches ran, how many were descheduled, and rows timed by CPU clock."""

    batches: int = 0
    descheduled: int = 0
    cpu_rows: int = 0
    streak: int = 0  # descheduled batches in a row, just now


@dataclass
class Best:
    """The best per-call time of one library: by wall clock (clean batches) and by CPU clock."""

    wall: float = math.inf
    cpu: float = math.inf


def _batch(call: Callable[[], object], count: int) -> tuple[float, float]:
    """Wall and CPU seconds for ``count`` calls, with the collector off as ``timeit`` does."""
    loop = itertools.repeat(None, count)
    enabled = gc.isenabled()
    gc.disable()
    try:
        cpu = time.process_time()
        start = time.perf_counter()
        for _ in loop:
            call()
        wall = time.perf_counter() - start
        return wall, time.process_time() - cpu
    finally:
        if enabled:
            gc.enable()


def _run(call: Callable[[], object], count: int, best: Best, noise: Noise) -> None:
    """One batch that had the CPU to itself, if MAX_ATTEMPTS tries (and a quiet machine) allow."""
    attempts = 1 if noise.streak >= BUSY_STREAK else MAX_ATTEMPTS
    for _ in range(attempts):
        wall, cpu = _batch(call, count)
        noise.batches += 1
        best.cpu = min(best.cpu, cpu / count)
        if cpu >= MIN_CPU_SHARE * wall:
            best.wall = min(best.wall, wall / count)
            noise.streak = 0
            return
        noise.descheduled += 1
        noise.streak += 1


def _calibrate(call: Callable[[], object], seconds: float, *, wall_only: bool = False) -> int:
    """The number of calls that takes about ``seconds``.

    By default a descheduled probe is read from its CPU time, so calibration
    never picks too few calls; ``wall_only`` reads the wall clock, for calls
    whose waiting is part of what is measured.
    """
    count = 1
    while True:
        wall, cpu = _batch(call, count)
        elapsed = wall if wall_only else min(wall, cpu)
        if elapsed >= seconds / 8 or count >= 1 << 24:
            return max(1, math.ceil(count * seconds / max(elapsed, 1e-9)))
        count *= 4


def _interleaved(names: list[str], rounds: int) -> Iterator[str]:
    """Every name once per round, starting one further each round, so noise hits all alike."""
    for round_index in range(rounds):
        shift = round_index % len(names)
        yield from names[shift:] + names[:shift]


def measure(
    calls: dict[str, Callable[[], object]], settings: Settings, noise: Noise
) -> tuple[dict[str, float], str]:
    """Best ops/s per library over interleaved rounds, and the clock they were read from.

    The clock is ``perf_counter`` (wall) when every library had at least one
    clean batch; otherwise the whole row falls back to ``process_time`` (CPU),
    so that the libraries of one row are always compared on the same clock.
    """
    counts = {name: _calibrate(call, settings.batch_seconds) for name, call in calls.items()}
    best = {name: Best() for name in calls}
    for name in _interleaved(list(calls), settings.rounds):
        _run(calls[name], counts[name], best[name], noise)
    if all(b.wall < math.inf for b in best.values()):
        return {name: 1.0 / b.wall for name, b in best.items()}, "wall"
    noise.cpu_rows += 1
    return {name: 1.0 / b.cpu for name, b in best.items()}, "cpu"


def measure_wall(
    calls: dict[str, Callable[[], object]], settings: Settings, noise: Noise
) -> tuple[dict[str, float], str]:
    """Best ops/s per call over interleaved rounds, by wall clock only.

    A call that waits (on a server, on ``fsync``) spends most of its wall time
    off the CPU, which ``measure`` would take for the process being
    descheduled; the latency is the point there, so every batch counts as it is.
    """
    counts = {
        name: _calibrate(call, settings.batch_seconds, wall_only=True)
        for name, call in calls.items()
    }
    best = dict.fromkeys(calls, math.inf)
    for name in _interleaved(list(calls), settings.rounds):
        wall, _cpu = _batch(calls[name], counts[name])
        noise.batches += 1
        best[name] = min(best[name], wall / counts[name])
    return {name: 1.0 / value for name, value in best.items()}, "wall"


def source_revision() -> str:
    """The git commit of the jwtward tree measured, ``+dirty`` if src/ has local edits."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH on purpose
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head
