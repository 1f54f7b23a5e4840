"""The fault suite's frame: a case runs the real CLI (``python -m watcher``, a child process) against real local
servers (HTTP, SMTP, webhook) in a fresh folder, and returns an ``Outcome`` judged on four points:

    no crash            the process ended with an expected exit status and printed no traceback
    nothing lost        every item / message owed is stored / arrived (or still waits in the ledger)
    nothing duplicated  no item stored twice, no Message-ID received twice (or only as the case documents)
    message shown       the output names the fault in words a person can act on

Cases are plain functions registered with ``@case(name, area)``; ``CASES`` lists them in the order registered.
``tests/faults/cases.py`` imports every case module explicitly: to add cases (two writers, a read-only archive,
secrets in ``-v`` output, a truncated feed...), write a module of ``@case`` functions and add it there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    no_crash: bool
    nothing_lost: bool
    nothing_duplicated: bool
    message_shown: bool
    detail: str = ""
    skipped: str = ""  # why the case cannot run on this machine (e.g. no permission to mount a file system)

    @property
    def ok(self) -> bool:
        return bool(self.skipped) or (self.no_crash and self.nothing_lost and self.nothing_duplicated
                                      and self.message_shown)

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        return cls(True, True, True, True, reason, skipped=reason)


@dataclass(frozen=True)
class Case:
    name: str
    area: str
    run: Callable[[Path], Outcome]
    summary: str = ""


CASES: list[Case] = []


def case(name: str, area: str) -> Callable[[Callable[[Path], Outcome]], Callable[[Path], Outcome]]:
    """Register a fault case: a function (work folder) -> Outcome. Its docstring's first line is its summary."""
    def register(fn: Callable[[Path], Outcome]) -> Callable[[Path], Outcome]:
        CASES.append(Case(name, area, fn, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""))
        return fn
    return register


@dataclass
class Cli:
    """One finished ``python -m watcher`` run."""

    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str
    output: str = field(init=False)

    def __post_init__(self) -> None:
        self.output = self.stdout + self.stderr

    def clean(self, *codes: int) -> bool:
        """Ended with one of ``codes`` (default 0), without a Python traceback."""
        return self.returncode in (codes or (0,)) and "Traceback (most recent call last)" not in self.output


# root reads and writes every file whatever its mode: the capabilities that let it are dropped for the cases about
# permissions (util-linux's setpriv), so that watcher meets what any other user would
UNPRIVILEGED = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                "--bounding-set=-dac_override,-dac_read_search"]


def unprivileged_reason() -> str:
    """Why the permission cases cannot run here ("" when they can)."""
    import shutil

    if os.geteuid() != 0:
        return ""
    if shutil.which("setpriv") is None:
        return "running as root without util-linux's setpriv: root ignores file permissions"
    return ""


def cli(folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
        unprivileged: bool = False) -> Cli:
    """Run the real CLI from ``folder`` with its ``sources.toml`` (``unprivileged``: as root without the right to
    ignore file permissions)."""
    full = [sys.executable, "-m", "watcher", "--config", str(folder / "sources.toml"), *args]
    if unprivileged and os.geteuid() == 0:
        full = UNPRIVILEGED + full
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(full, cwd=folder, env=environ, capture_output=True, text=True, timeout=timeout)
    return Cli(args, done.returncode, done.stdout, done.stderr)


def describe(run: Cli) -> str:
    """The last meaningful line of a run, for the table."""
    lines = [line.strip() for line in run.output.splitlines() if line.strip()]
    return f"exit {run.returncode}: {lines[-1][:110] if lines else '(no output)'}"
