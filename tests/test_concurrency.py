"""One writer at a time: the archive's writer lock, and two real ``watcher fetch`` processes started together."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.bench_two_writers import two_writers, write_config
from store import ArchiveBusy, Store, writer_lock
from watcher.cli import main
from watcher.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
HOLD = ("import sys; from store import writer_lock\n"
        "with writer_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An archive whose writer lock another process holds until the test ends: (archive path, that pid)."""
    database = tmp_path / "watcher.db"
    Store(database).close()
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(database)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    yield database, child.pid
    child.communicate("")  # end of stdin: the holder leaves its block and exits


def test_two_fetch_processes_started_together_neither_crash_nor_lose_nor_duplicate(tmp_path: Path) -> None:
    with ReplayServer() as server:
        done = two_writers(tmp_path, server, sources=2)
    assert done.codes == (0, 0) and "Traceback" not in done.stderr, done.stderr
    assert (done.stored, done.distinct, done.versions) == (1000, 1000, 0)
    assert done.fetches == 4, "both runs fetched both sources: the second waited, then found everything unchanged"


def test_a_second_writer_is_told_who_holds_the_archive(held: tuple[Path, int]) -> None:
    database, pid = held
    with pytest.raises(ArchiveBusy) as busy, writer_lock(database, wait=0):
        pass
    message = str(busy.value)
    assert re.search(rf"another watcher run holds the archive since \d\d:\d\d \(pid {pid}\); exiting", message)
    assert str(database) in message


def test_waiting_says_so_once_then_gives_up_after_the_timeout(held: tuple[Path, int]) -> None:
    database, pid = held
    told: list[str] = []
    with pytest.raises(ArchiveBusy, match=r"exiting after waiting 0.1 s"), writer_lock(database, wait=0.1,
                                                                                       on_wait=told.append):
        pass
    assert len(told) == 1 and f"(pid {pid}); waiting up to 0.1 s" in told[0]


def test_cli_writer_exits_cleanly_while_readers_still_read(held: tuple[Path, int], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    database, pid = held
    monkeypatch.setenv("WATCHER_DATABASE", str(database))
    with ReplayServer() as server:
        config = str(write_config(tmp_path, server, 1))
        runner = CliRunner()
        fetch = runner.invoke(main, ["--config", config, "--lock-wait", "0", "fetch", "--force"])
        assert fetch.exit_code == 3  # storage: the archive is busy
        assert fetch.output.startswith(f"error: archive {database}: another watcher run holds the archive since ")
        assert f"(pid {pid}); exiting" in fetch.output and "Traceback" not in fetch.output
        sources = runner.invoke(main, ["--config", config, "sources"])
        assert sources.exit_code == 0 and "cnil-0" in sources.output and "never" in sources.output
        search = runner.invoke(main, ["--config", config, "search", "cnil"])  # read while the writer holds the lock
        assert search.exit_code == 1 and "no result for 'cnil'" in search.output  # an empty archive, read, not locked


def test_the_lock_is_reentrant_in_one_process_and_free_after(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    with writer_lock(database, wait=0), writer_lock(database, wait=0):
        store = Store(database)  # migrating takes the lock again: no deadlock with ourselves
    with writer_lock(database, wait=0):
        store.ensure_sources({"a": "feed"})
    store.close()


def test_ensure_sources_is_idempotent(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "w.db"), Store(tmp_path / "w.db")
    first.ensure_sources({"a": "feed", "b": "html"})
    second.ensure_sources({"a": "feed", "b": "html", "c": "feed"})  # no UNIQUE error for the rows already there
    assert [r["name"] for r in first.sources_health()] == ["a", "b", "c"]
