"""One daemon per archive: a second one is refused with who holds it and since when; a killed one frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.daemon.instance import AlreadyRunning, DaemonLock, read_state, running, state_path

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 6, 16, 8, 5, tzinfo=UTC)
HOLDER = """
import sys
from datetime import datetime
from pathlib import Path
from watcher.daemon.instance import DaemonLock
lock = DaemonLock(Path(sys.argv[1])).acquire(datetime.fromisoformat(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_daemon_is_refused_and_a_killed_one_frees_the_archive(tmp_path: Path) -> None:
    db = tmp_path / "watcher.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), T0.isoformat()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert running(db)
        with pytest.raises(AlreadyRunning, match=rf"since 2026-06-16 08:05 \(pid {holder.pid}\); exiting"):
            DaemonLock(db).acquire(datetime.now(UTC))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not running(db)  # the kernel dropped the lock with the process
    lock = DaemonLock(db).acquire(T0)
    lock.update(next_runs={"source:cnil": "2026-06-16T09:00:00+00:00"})
    assert read_state(state_path(db))["pid"] == os.getpid() and running(db)
    lock.release()
    assert read_state(state_path(db))["stopped"] is True and not running(db)
