"""Shared helpers of the benchmarks: timed child processes, their peak memory, tables and verdict lines.

Every measured run happens in a fresh child process (``run_child``) so that its wall time includes start-up and
imports, and its peak memory is its own: ``os.wait4`` returns the resource usage of exactly that child
(``ru_maxrss``, the high-water mark of its resident set, in KiB on Linux), not the maximum over every child the
parent ever waited for (what ``RUSAGE_CHILDREN`` gives).

Children run with bytecode caching on, in ``$TMPDIR/watcher-bench-pycache`` (``PYTHONPYCACHEPREFIX``, so nothing
is written in the repository): this sandbox sets ``PYTHONDONTWRITEBYTECODE=1``, which would make every run of
watcher (an editable install, no ``__pycache__``) recompile its modules while the site-packages of the other tools
ship compiled. Run one unmeasured warm-up per command (``warm_up``) before timing it.

A child reports what it measured inside (split timings, counts) by printing one line ``BENCH-RESULT {json}``
(``emit``); the parent finds it in ``ChildRun.result``. Benchmarks never assert timings: they print tables and one
verdict line per goal.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from classifiers.engine.e5 import Embedder, Kind

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MARK = "BENCH-RESULT "
T = TypeVar("T")


class ChildFailed(RuntimeError):
    """A measured child process exited with an error (its stderr tail is in the message)."""


@dataclass(frozen=True)
class ChildRun:
    """One child process: wall time seen by the parent, its own peak RSS, and what it reported."""

    wall: float  # seconds, fork to exit, as seen by the parent
    cpu: float  # user + system seconds of this child
    peak_rss_kb: int  # ru_maxrss of this child only
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def peak_mb(self) -> float:
        return self.peak_rss_kb / 1024


def bench_parser(doc: str | None, *, quick: str, repeat: str | None = None) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring's first line as description, ``--quick`` (what ``run_all
    --quick`` passes; ``quick`` says what it shrinks to) and, given its help, ``--repeat N`` (see ``repeats``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help=quick)
    if repeat is not None:
        parser.add_argument("--repeat", type=int, default=None, help=f"{repeat} (default 3)")
    return parser


def repeats(args: argparse.Namespace) -> int:
    """Measured runs: ``--repeat``, else 1 with ``--quick``, else 3."""
    return int(args.repeat or (1 if args.quick else 3))


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args`` with the interpreter running the benchmark (the project's venv)."""
    return [PYTHON, "-m", module, *args]


PYCACHE = Path(tempfile.gettempdir()) / "watcher-bench-pycache"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured child: ours, bytecode cached outside the repository, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return {**env, **(extra or {})}


def run_child(args: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = True) -> ChildRun:
    """Run ``args`` from the repository root; time it and read its own peak RSS with ``os.wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(args), cwd=REPO, stdout=out, stderr=err, env=child_env(env))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    run = ChildRun(wall, cpu, int(usage.ru_maxrss), code, stdout, stderr, _result(stdout))
    if check and code != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise ChildFailed(f"{' '.join(args[:4])}... exited with {code}:\n{tail}")
    return run


def _result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            parsed: dict[str, Any] = json.loads(line[len(MARK):])
            return parsed
    return {}


def emit(result: Mapping[str, Any]) -> None:
    """In a child: hand ``result`` to the parent (one ``BENCH-RESULT`` line on stdout)."""
    print(MARK + json.dumps(dict(result), default=str), flush=True)


def profiled(fn: Callable[[], T], *, top: int = 30, sort: str = "cumulative") -> tuple[T, str]:
    """Call ``fn`` under cProfile; its value and the ``top`` lines of the profile as text."""
    profile = cProfile.Profile()
    value = profile.runcall(fn)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).strip_dirs().sort_stats(sort).print_stats(top)
    return value, text.getvalue()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                          strict=True)))

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def verdict(goal: str, measured: str, ok: bool) -> str:
    """One line per goal: ``VERDICT PASS|FAIL  <goal>  measured: <what>``; printed and returned."""
    text = f"VERDICT {'PASS' if ok else 'FAIL'}  {goal}  measured: {measured}"
    print(text)
    return text


def machine() -> str:
    """CPU count and Python version: the context the numbers belong to."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs (load average {load}), Python {sys.version.split()[0]}, {sys.platform}"


class CachedEmbedder:
    """Any embedder, with its vectors cached on disk by (model version, kind, text)."""

    def __init__(self, inner: Embedder, folder: Path):
        self.inner, self.folder = inner, folder
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        folder.mkdir(parents=True, exist_ok=True)

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        keys = [hashlib.sha256(f"{self.version}\0{kind}\0{t}".encode()).hexdigest()[:24] for t in texts]
        missing = [i for i, k in enumerate(keys) if not (self.folder / f"{k}.npy").exists()]
        if missing:
            vecs = self.inner.embed([texts[i] for i in missing], kind=kind, batch_size=batch_size)
            for i, v in zip(missing, vecs, strict=True):
                np.save(self.folder / f"{keys[i]}.npy", v.astype(np.float32))
        return np.stack([np.load(self.folder / f"{k}.npy") for k in keys]).astype(np.float32)


def cpu_line() -> str:
    """The processor's model name (``lscpu``'s "Model name" line) and the load average now: printed with every
    table, since the machines differ from one session to the next and the 2 CPUs are shared."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"Model name: {model}; {os.cpu_count()} CPUs, load average {load}"
