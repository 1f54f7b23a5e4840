"""Storage faults are messages: read-only file or folder, missing folder, disk full, locked, corrupt. Each ends in
one line naming the archive and what to do (``StoreError``), never a traceback, and nothing half written.

Tests run as root here, where ``chmod`` does not stop writes: a read-only file or folder is made with the
immutable attribute (``chattr +i``, which binds root too) when running as root, with ``chmod`` otherwise."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from store import Store, StoreError
from watcher.cli import main
from watcher.config import SourceConfig, load_config
from watcher.http import HttpClient
from watcher.pipeline import ingest
from watcher.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
CNIL_500 = ROOT / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
CNIL_6 = ROOT / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml"
RSS = {"content-type": "application/rss+xml"}


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a folder) read-only for this process, root included, for the block."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without chattr +i: cannot make a file read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive with the 6 real CNIL items, in its own folder."""
    folder = tmp_path / "var"
    with ReplayServer() as server:
        server.add("https://www.cnil.fr/fr/rss.xml", body=CNIL_6.read_bytes(), headers=RSS)
        _fetch(folder / "watcher.db", server)
    return folder / "watcher.db"


def _config(tmp_path: Path, server: ReplayServer) -> str:
    path = tmp_path / "sources.toml"
    path.write_text(f'[settings]\nhost_delay = 0\n[[source]]\nname = "cnil"\nkind = "feed"\n'
                    f'url = "{server.url_map("https://www.cnil.fr/fr/rss.xml")}"\n', encoding="utf-8")
    return str(path)


def _fetch(database: Path, server: ReplayServer) -> None:
    database.parent.mkdir(parents=True, exist_ok=True)
    result = _cli(database, server, "fetch", "--force")
    assert result.exit_code == 0, result.output


def _cli(database: Path, server: ReplayServer, *args: str) -> Result:
    env = {"WATCHER_DATABASE": str(database)}
    return CliRunner(env=env).invoke(main, ["--config", _config(database.parent.parent, server), *args])


def _one_error_line(result: Result) -> str:
    output = result.output
    assert result.exit_code == 3 and "Traceback" not in output, output  # 3: storage (the exit-code table)
    (line,) = [line for line in output.splitlines() if line.startswith("error: ")]  # besides a progress bar
    return line


def test_read_only_file_write_is_one_line_and_reading_still_works(archive: Path) -> None:
    with ReplayServer() as server, read_only(archive):
        server.add("https://www.cnil.fr/fr/rss.xml", body=CNIL_500.read_bytes(), headers=RSS)
        line = _one_error_line(_cli(archive, server, "fetch", "--force"))
        assert line == (f"error: archive {archive}: the file or its folder is read-only; give the user running "
                        "watcher write access to both (SQLite writes a -wal and a -shm file beside the archive)")
        found = _cli(archive, server, "search", "cnil")
        assert found.exit_code == 0 and "https://cnil.fr/" in found.output
        assert " ok " in _cli(archive, server, "sources").output
    assert Store(archive).count_items() == 6, "nothing half written"


def test_read_only_folder_write_is_one_line_and_reading_still_works(archive: Path) -> None:
    with ReplayServer() as server, read_only(archive.parent):
        line = _one_error_line(_cli(archive, server, "fetch", "--force"))
        assert line.startswith(f"error: archive {archive}") and "read-only" in line
        assert "write access" in line
        found = _cli(archive, server, "search", "cnil")
        assert found.exit_code == 0 and "https://cnil.fr/" in found.output


def test_missing_folder_is_created_or_named(tmp_path: Path) -> None:
    Store(tmp_path / "new" / "deeper" / "w.db").close()  # a missing folder is simply created
    with read_only(tmp_path), pytest.raises(StoreError) as error:
        Store(tmp_path / "absent" / "w.db")
    assert str(tmp_path / "absent") in str(error.value) and "write access" in str(error.value)
    with pytest.raises(StoreError, match=r"no archive here yet; run `watcher fetch`"):
        Store.open_readonly(tmp_path / "absent" / "w.db")


def test_corrupt_file_is_named_by_writers_and_readers(tmp_path: Path) -> None:
    junk = tmp_path / "var" / "watcher.db"
    junk.parent.mkdir()
    junk.write_bytes(CNIL_6.read_bytes()[:4096])  # an XML file where the archive should be
    expected = (f"error: archive {junk}: the file is not a SQLite database (corrupt or another kind of file); "
                "restore it from a backup or move it away to start a new archive")
    with ReplayServer() as server:
        assert _one_error_line(_cli(junk, server, "fetch", "--force")) == expected
        assert _one_error_line(_cli(junk, server, "search", "x")) == expected


def test_disk_full_fails_one_source_whole_and_the_others_go_on(
        tmp_path: Path, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    store = Store(tmp_path / "w.db")
    big = SourceConfig(name="big", kind="feed", url="https://a.example/big.xml")
    small = SourceConfig(name="small", kind="feed", url="https://a.example/small.xml")
    replay_server.add(big.url, body=CNIL_500.read_bytes(), headers=RSS)
    replay_server.add(small.url, body=CNIL_6.read_bytes(), headers=RSS)
    config = load_config(_write_sources(tmp_path, [big, small]))
    pages = store.db.execute("pragma page_count").fetchone()[0]
    store.db.execute(f"pragma max_page_count = {pages + 60}")  # room for 6 items, not for 500: a full disk
    big_report, small_report = ingest(config, store, http_client(), NOW, [big, small])
    assert big_report.outcome == "failed" and "the disk is full" in big_report.error
    assert str(tmp_path / "w.db") in big_report.error
    assert store.count_items("big") == 0, "nothing half written: the whole batch was rolled back"
    assert (small_report.outcome, small_report.new, store.count_items("small")) == ("ok", 6, 6)


def _write_sources(tmp_path: Path, sources: list[SourceConfig]) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text("".join(f'[[source]]\nname = "{s.name}"\nkind = "feed"\nurl = "{s.url}"\n' for s in sources),
                    encoding="utf-8")
    return path


def test_locked_archive_is_a_message_and_the_write_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    store.db.execute("pragma busy_timeout = 0")  # do not wait the 30 s a real run would
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("begin immediate")  # a foreign process in the middle of a write
    row = {"id": "a:1", "source": "a", "title": "t", "content_hash": "h"}
    with pytest.raises(StoreError, match=r"another process keeps the archive locked"):
        store.upsert_items([row], "2026-11-29T06:00:00Z")
    other.rollback()
    assert store.upsert_items([row], "2026-11-29T06:00:00Z").new == ["a:1"]


def test_a_sources_items_state_and_log_line_are_one_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    store.ensure_sources({"a": "feed"})
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_items([{"id": "a:1", "source": "a", "title": "t", "content_hash": "h"}], "2026-11-29T06:00:00Z")
        store.record_success("a", now="2026-11-29T06:00:00Z", etag='"v2"', last_modified=None, cursor=None)
        store.log_fetch({"source": "a", "outcome": "ok"})
        raise RuntimeError("the disk filled up here")
    assert (store.count_items(), store.source_state("a").get("etag"), store.fetch_log()) == (0, None, [])
