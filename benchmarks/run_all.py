"""Run every benchmark of this folder in turn, each as ``python -m benchmarks.bench_X``; a failure does not stop
the others.

    python -m benchmarks.run_all [--quick] [--only ingest poll] [--skip finetune] [--timeout 1800]

The benchmarks are the ``bench_*.py`` modules of ``benchmarks/`` (listed when this runs, so a new one is picked up
without editing this file). Each runs in its own process, its output streamed as it comes; ``--quick`` is passed
to those that accept it (their source declares ``--quick``). At the end: one line per benchmark (exit status,
seconds) and every ``VERDICT`` line they printed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._util import REPO, bench_parser, child_env, machine, python_module

HERE = Path(__file__).resolve().parent


@dataclass
class Outcome:
    name: str
    status: str
    seconds: float
    verdicts: list[str] = field(default_factory=list)


def available() -> list[str]:
    """Names of the benchmark modules (``bench_ingest`` for ``benchmarks/bench_ingest.py``), sorted."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def accepts_quick(name: str) -> bool:
    return '"--quick"' in (HERE / f"{name}.py").read_text(encoding="utf-8")


def run_one(name: str, quick: bool, timeout: float) -> Outcome:
    args = python_module(f"benchmarks.{name}", *(["--quick"] if quick and accepts_quick(name) else []))
    print(f"\n===== {' '.join(args[1:])} =====", flush=True)
    start = time.perf_counter()
    verdicts: list[str] = []
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env(), bufsize=1)
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)  # this child only, by its handle
    timer.start()
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("VERDICT"):
                verdicts.append(line.rstrip())
        code = proc.wait()
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    seconds = time.perf_counter() - start
    status = "ok" if code == 0 else "timed out" if seconds >= timeout else f"failed (exit {code})"
    return Outcome(name, status, seconds, verdicts)


def main(argv: Sequence[str] | None = None) -> int:
    names = available()
    parser = bench_parser(__doc__, quick="pass --quick to the benchmarks that accept it")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"only these (of: {', '.join(names)})")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="leave these out")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per benchmark")
    args = parser.parse_args(argv)

    def norm(n: str) -> str:
        return n if n.startswith("bench_") else f"bench_{n}"

    chosen = [n for n in names if (not args.only or n in map(norm, args.only)) and n not in map(norm, args.skip)]
    print(f"run_all: {', '.join(chosen)}; {machine()}")
    outcomes = [run_one(name, args.quick, args.timeout) for name in chosen]
    print("\n===== summary =====")
    for o in outcomes:
        print(f"{o.name:<28} {o.status:<18} {o.seconds:8.1f} s")
    for o in outcomes:
        for line in o.verdicts:
            print(f"{o.name}: {line}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
