"""Command line, environment, tables, summaries and JSON shared by the benchmarks.

Every benchmark prints the same kind of report: a header naming the Python,
the platform and the versions measured, a table printed row by row as the
measurements come in, a line about the machine's noise, and a ``summary:`` line
saying whether jwtward met its targets; or, with ``--json``, one document with
the same facts. Keeping those parts here means the scripts differ only in what
they measure, and a fix to the report reaches all of them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from _timing import MAX_ATTEMPTS, Noise, Settings, source_revision

__all__ = [
    "Output",
    "PeerResult",
    "PeerTable",
    "description",
    "environment",
    "header",
    "json_report",
    "main_for",
    "noise_line",
    "parse_args",
    "peer_json",
    "run_cases",
    "select",
    "silence_warnings",
    "target_summary",
    "timing_facts",
]

CaseT = TypeVar("CaseT")
ResultT = TypeVar("ResultT")
Distributions = Sequence[tuple[str, str]]  # (name shown, distribution to ask for its version)


# -- command line ------------------------------------------------------------------------


def description(doc: str | None) -> str | None:
    """The first paragraph of a script's docstring: its ``--help`` description."""
    return doc.split("\n\n")[0] if doc else None


def base_parser(doc: str | None, quick_help: str) -> argparse.ArgumentParser:
    """The options every benchmark has, whatever it measures: --quick, --json, --rounds."""
    parser = argparse.ArgumentParser(description=description(doc))
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", action="store_true", help="print results as JSON only")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    return parser


def parse_args(
    argv: Sequence[str] | None, doc: str | None, algs_example: str
) -> tuple[argparse.Namespace, Settings]:
    """The options of the in-process benchmarks, and the timing settings they give."""
    parser = base_parser(doc, "short run: 3 rounds, short batches")
    parser.add_argument("--algs", help=f"comma-separated algs, e.g. {algs_example}")
    parser.add_argument(
        "--batch-seconds", type=float, help="duration of one batch (default 0.1, quick 0.02)"
    )
    args = parser.parse_args(argv)
    settings = Settings(
        rounds=args.rounds or (3 if args.quick else 5),
        batch_seconds=args.batch_seconds or (0.02 if args.quick else 0.1),
    )
    return args, settings


def select(
    cases: Sequence[CaseT],
    spec: str | None,
    names: Callable[[CaseT], Iterable[str]],
    label: Callable[[CaseT], str],
    noun: str = "alg(s)",
) -> list[CaseT]:
    """The cases ``spec`` names (comma-separated, any case); an unknown name stops the run."""
    if spec is None:
        return list(cases)
    wanted = {name.strip().lower() for name in spec.split(",") if name.strip()}
    chosen = [c for c in cases if {n.lower() for n in names(c)} & wanted]
    known = {n.lower() for c in cases for n in names(c)}
    unknown = sorted(wanted - known)
    if unknown or not chosen:
        listed = ", ".join(label(c) for c in cases)
        raise SystemExit(f"unknown {noun} {', '.join(unknown) or spec!r}; choose from {listed}")
    return chosen


def silence_warnings(*noisy_modules: str) -> None:
    """Stop peers' warnings (deprecations, EdDSA, ...) from being printed into the table.

    The warning machinery still runs on each call, only the printing is
    silenced. A module that adds an "always" filter for its own warnings on
    import (authlib.jose does) is imported first inside ``catch_warnings``
    (recording, so nothing is printed), which drops that filter on the way out.
    """
    with warnings.catch_warnings(record=True):
        for module in noisy_modules:
            __import__(module)
    warnings.simplefilter("ignore")


# -- environment and header --------------------------------------------------------------


def _version(dist: str, optional: bool) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        if optional:
            return "not installed"
        raise


def environment(
    distributions: Distributions,
    *,
    optional: bool = False,
    machine: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Python, platform and the versions measured; ``optional`` ones may be missing.

    ``machine`` facts follow the platform's, ``extra`` ones the jwtward revision.
    """
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **(machine or {}),
        **{name: _version(dist, optional) for name, dist in distributions},
        "jwtward_revision": source_revision(),
        **(extra or {}),
    }


def header(env: Mapping[str, Any], distributions: Distributions, platform_note: str = "") -> str:
    """The first two header lines: interpreter and platform, then every version measured."""
    versions = ", ".join(f"{name} {env[name]}" for name, _ in distributions if name != "jwtward")
    return (
        f"Python {env['python']} ({env['implementation']}) on {env['platform']}{platform_note}\n"
        f"jwtward {env['jwtward']} ({env['jwtward_revision']}), {versions}"
    )


# -- results against peers ---------------------------------------------------------------


@dataclass(frozen=True)
class PeerResult:
    """One row: the ops/s of jwtward and each peer for one case and operation."""

    label: str
    operation: str
    ops_per_second: dict[str, float]
    clock: str  # "wall" (perf_counter) or "cpu" (process_time, when the machine was busy)
    peers: tuple[str, ...]
    target: float = 1.0  # jwtward ops/s over the fastest peer's, at least

    @property
    def fastest_peer(self) -> str:
        return max(self.peers, key=lambda name: self.ops_per_second[name])

    @property
    def vs_fastest_peer(self) -> float:
        return self.ops_per_second["jwtward"] / self.ops_per_second[self.fastest_peer]

    @property
    def met(self) -> bool:
        return self.vs_fastest_peer >= self.target

    def vs(self, peer: str) -> float:
        return self.ops_per_second["jwtward"] / self.ops_per_second[peer]


@dataclass(frozen=True)
class PeerTable:
    """The table of ops/s per library with jwtward's ratio to the fastest peer and its target."""

    libraries: tuple[str, ...]
    label_width: int
    op_width: int
    column_width: int = 10

    def columns(self, result: PeerResult) -> str:
        return "".join(
            f"{result.ops_per_second[name]:>{self.column_width},.0f}" for name in self.libraries
        )

    def heading(self, label: str = "alg") -> str:
        names = "".join(f"{name:>{self.column_width}}" for name in self.libraries)
        rule = self.label_width + self.op_width + self.column_width * len(self.libraries) + 41
        return (
            f"\n{label:<{self.label_width}}{'op':<{self.op_width}}{names}   "
            f"{'/fastest peer':<22}{'target':>7}\n" + "-" * rule
        )

    def row(self, result: PeerResult) -> str:
        fastest = f"{result.vs_fastest_peer:.3f}x ({result.fastest_peer})"
        verdict = "ok" if result.met else "MISS"
        clock = " cpu" if result.clock == "cpu" else ""
        return (
            f"{result.label:<{self.label_width}}{result.operation:<{self.op_width}}"
            f"{self.columns(result)}   {fastest:<22}{result.target:>6.1f}x  {verdict}{clock}"
        )

    def print_row(self, result: PeerResult) -> None:
        print(self.row(result), flush=True)


def missed_summary(results: Sequence[PeerResult], noise: Noise) -> None:
    """The noise line and whether every row met its target against the fastest peer."""
    print(noise_line(noise))
    target_summary(
        [r for r in results if not r.met],
        lambda r: (
            f"{r.label} {r.operation} ({r.vs_fastest_peer:.3f}x of {r.fastest_peer}, "
            f"target {r.target:.1f}x)"
        ),
    )


def peer_json(result: PeerResult, libraries: Sequence[str], **extra: Any) -> dict[str, Any]:
    """One row of the JSON document, ``extra`` facts last."""
    return {
        "alg": result.label,
        "op": result.operation,
        "ops_per_second": {name: round(result.ops_per_second[name], 1) for name in libraries},
        "clock": result.clock,
        "fastest_peer": result.fastest_peer,
        "jwtward_vs_fastest_peer": round(result.vs_fastest_peer, 4),
        **extra,
    }


def target_json(result: PeerResult, libraries: Sequence[str]) -> dict[str, Any]:
    return peer_json(result, libraries, target=result.target, met=result.met)


# -- summary and JSON --------------------------------------------------------------------


def noise_line(noise: Noise) -> str:
    """How noisy the machine was: batches run, descheduled, and rows read from the CPU clock."""
    return (
        f"\nbatches: {noise.batches}; descheduled (tried again up to {MAX_ATTEMPTS} times unless"
        f" the machine stayed busy): {noise.descheduled}; rows read from the CPU clock:"
        f" {noise.cpu_rows}"
    )


def target_summary(missed: Sequence[ResultT], describe: Callable[[ResultT], str]) -> None:
    """The ``summary:`` line: every target met, or the rows that missed theirs."""
    if not missed:
        print("summary: jwtward meets every target")
        return
    listed = ", ".join(describe(r) for r in missed)
    print(f"summary: jwtward misses the target for: {listed}")


def timing_facts(settings: Settings, noise: Noise) -> dict[str, Any]:
    """How the in-process benchmarks measured, for their JSON documents."""
    return {
        "rounds": settings.rounds,
        "batch_seconds": settings.batch_seconds,
        "batches": {"total": noise.batches, "descheduled": noise.descheduled},
    }


def json_report(env: Mapping[str, Any], results: object, **facts: Any) -> dict[str, Any]:
    """The JSON document: environment first, then the run's facts, then the results."""
    return {"environment": env, **facts, "results": results}


def dump_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2)
    print()


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output(Generic[ResultT]):
    """How a benchmark reports: header, one row as it comes, summary, or the JSON document."""

    print_header: Callable[[Settings], None]
    print_row: Callable[[ResultT], None]
    print_summary: Callable[[list[ResultT], Noise], None]
    to_json: Callable[[list[ResultT], Settings, Noise], object]


def run_cases(
    cases: Sequence[CaseT],
    bench_case: Callable[[CaseT, Settings, Noise], list[ResultT]],
    settings: Settings,
    output: Output[ResultT],
    *,
    as_json: bool,
) -> int:
    """Measure every case, printing rows as they come (or JSON at the end)."""
    if not as_json:
        output.print_header(settings)
    results: list[ResultT] = []
    noise = Noise()
    for case in cases:
        case_results = bench_case(case, settings, noise)
        results.extend(case_results)
        if not as_json:
            for result in case_results:
                output.print_row(result)
    if as_json:
        dump_json(output.to_json(results, settings, noise))
    else:
        output.print_summary(results, noise)
    return 0


def main_for(  # noqa: PLR0917 - one benchmark's parts, named where they are passed
    argv: Sequence[str] | None,
    doc: str | None,
    algs_example: str,
    select_cases: Callable[[str | None], Sequence[CaseT]],
    bench_case: Callable[[CaseT, Settings, Noise], list[ResultT]],
    output: Output[ResultT],
    *,
    noisy_modules: Sequence[str] = (),
) -> int:
    """The ``main`` of a benchmark against peers: parse, pick the cases, quiet the peers, run."""
    args, settings = parse_args(argv, doc, algs_example)
    cases = select_cases(args.algs)
    silence_warnings(*noisy_modules)
    return run_cases(cases, bench_case, settings, output, as_json=args.json)
