"""Timing shared by the benchmarks: interleaved rounds, best batch, busy-machine fallback.

Rounds are interleaved (every library runs one batch per round, in a rotating
order) and the best batch per library counts, so machine noise hits all of them
alike. Time is read from ``perf_counter``; a batch during which the process lost
the CPU (its ``process_time`` well below its wall time) is run again, and a row
in which some library never got a clean batch is read from the CPU clock for
every library instead, so that one row always compares libraries on one clock.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = [
    "BUSY_STREAK",
    "MAX_ATTEMPTS",
    "MIN_CPU_SHARE",
    "Best",
    "Noise",
    "Settings",
    "measure",
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


def _calibrate(call: Callable[[], object], seconds: float) -> int:
    """The number of calls that takes about ``seconds``."""
    count = 1
    while True:
        elapsed = min(_batch(call, count))  # CPU time if descheduled: never too few calls
        if elapsed >= seconds / 8 or count >= 1 << 24:
            return max(1, math.ceil(count * seconds / max(elapsed, 1e-9)))
        count *= 4


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
    names = list(calls)
    for round_index in range(settings.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            _run(calls[name], counts[name], best[name], noise)
    if all(b.wall < math.inf for b in best.values()):
        return {name: 1.0 / b.wall for name, b in best.items()}, "wall"
    noise.cpu_rows += 1
    return {name: 1.0 / b.cpu for name, b in best.items()}, "cpu"


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


def parse_args(
    argv: Sequence[str] | None, description: str | None, algs_example: str
) -> tuple[argparse.Namespace, Settings]:
    """The options every benchmark takes, and the timing settings they give."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds, short batches")
    parser.add_argument("--algs", help=f"comma-separated algs, e.g. {algs_example}")
    parser.add_argument("--json", action="store_true", help="print results as JSON only")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument(
        "--batch-seconds", type=float, help="duration of one batch (default 0.1, quick 0.02)"
    )
    args = parser.parse_args(argv)
    settings = Settings(
        rounds=args.rounds or (3 if args.quick else 5),
        batch_seconds=args.batch_seconds or (0.02 if args.quick else 0.1),
    )
    return args, settings


CaseT = TypeVar("CaseT")
ResultT = TypeVar("ResultT")


def run_cases(
    cases: Sequence[CaseT],
    bench_case: Callable[[CaseT, Settings, Noise], list[ResultT]],
    settings: Settings,
    *,
    as_json: bool,
    print_header: Callable[[Settings], None],
    print_row: Callable[[ResultT], None],
    print_summary: Callable[[list[ResultT], Noise], None],
    to_json: Callable[[list[ResultT], Settings, Noise], object],
) -> int:
    """Measure every case, printing rows as they come (or JSON at the end)."""
    if not as_json:
        print_header(settings)
    results: list[ResultT] = []
    noise = Noise()
    for case in cases:
        case_results = bench_case(case, settings, noise)
        results.extend(case_results)
        if not as_json:
            for result in case_results:
                print_row(result)
    if as_json:
        json.dump(to_json(results, settings, noise), sys.stdout, indent=2)
        print()
    else:
        print_summary(results, noise)
    return 0
