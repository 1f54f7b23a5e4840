"""Exit codes follow the README's table everywhere (0 done, 1 done but a source or a delivery failed, 2 usage or
configuration error, missing secret or no archive where a reading command looks, 3 storage error), and reading
never writes: a command that reads never creates an archive, says where it looked, and names the demo's archive
when there is one. Each case runs the real command (click's runner) and checks the code and the one line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from archive_support import copy_archive
from archive_support import write_config as archive_config
from click.testing import CliRunner
from test_notify_support import cnil_items, email_channel, seed, subscription, write_config

from store import Store
from watcher.cli import main
from watcher.config import load_config

READING = [
    ("sources",), ("subscriptions",), ("deliveries",), ("untagged",), ("search", "données de santé"), ("status",),
    ("newsletter", "show"), ("newsletter", "subscribers"), ("newsletter", "export", "1"), ("serve", "--port", "0"),
]


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(path), *args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("command", READING, ids=lambda c: " ".join(c))
def test_a_reading_command_without_an_archive_creates_none_says_where_it_looked_and_names_the_demo_s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]) -> None:
    path = write_config(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    code, out = run(path, *command)
    assert code == 2 and f"no archive at {tmp_path / 'watcher.db'}" in out, out
    assert "run `watcher fetch`" in out
    assert not list(tmp_path.glob("watcher.db*"))  # nothing was created
    demo = tmp_path / "var" / "demo"
    demo.mkdir(parents=True)
    Store(demo / "watcher.db").close()  # the archive `watcher demo` leaves
    code, out = run(path, *command)
    assert code == 2 and "the demo's archive is var/demo/watcher.db: WATCHER_DATABASE=var/demo/watcher.db watcher " \
                          f"{command[0]}" in out, out
    assert not list(tmp_path.glob("watcher.db*"))


def test_run_exits_2_when_deliveries_wait_for_a_missing_secret(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_EXIT_PW", raising=False)
    # the run is on the real clock: the recorded June items are news, not a first run's baseline
    path = write_config(tmp_path, '[alerts]\nbaseline_horizon = "3650d"\n' + email_channel(2)
                        + 'username = "v"\npassword_env = "WATCHER_EXIT_PW"\n'
                        + subscription("alice", themes=["health-data", "personal-data"]))
    store = Store(load_config(path).database)
    rows = cnil_items()
    seed(store, rows, {rows[1]["id"]: [("health-data", 0.8)]})
    store.close()
    result = CliRunner().invoke(main, ["--config", str(path), "run", "--rules-only"], catch_exceptions=False)
    assert result.exit_code == 2 and "environment variable WATCHER_EXIT_PW is not set" in result.output, result.output


def test_a_bad_week_is_a_usage_error(tmp_path: Path) -> None:
    code, out = run(write_config(tmp_path, ""), "newsletter", "draft", "--week", "July")
    assert code == 2 and "--week" in out and "not an ISO week" in out


def test_a_port_in_use_is_a_usage_error_not_a_storage_one(tmp_path: Path, archive_built: Path) -> None:
    path = archive_config(tmp_path, copy_archive(archive_built, tmp_path / "db"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out = run(path, "serve", "--port", str(taken.getsockname()[1]))
    assert code == 2 and "another program uses it; choose another with --port" in out


def test_publishing_an_issue_again_is_nothing_to_do_and_says_when_it_was_published(
        tmp_path: Path, archive_built: Path) -> None:
    path = archive_config(tmp_path, copy_archive(archive_built, tmp_path / "db"),
                          extra='[newsletter]\ntitle = "Lettre"\nsubscribers = ["a@cabinet-test.fr"]\n')
    assert run(path, "newsletter", "draft", "--week", "2026-W30")[0] == 0
    code, out = run(path, "newsletter", "publish", "1", "--no-send")
    assert code == 0 and "issue 1 published" in out
    code, out = run(path, "newsletter", "publish", "1")
    assert code == 0 and "issue 1 was already published on 20" in out and "nothing to do" in out


def test_search_finds_nothing_exit_1_like_grep_and_a_bad_config_exit_2(tmp_path: Path, archive_built: Path) -> None:
    path = archive_config(tmp_path, copy_archive(archive_built, tmp_path / "db"))
    assert run(path, "search", "zzzqqqxxx")[0] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[settings]\ndatabase = "x.db"\nnope = 1\n', encoding="utf-8")
    code, out = run(bad, "sources")
    assert code == 2 and "nope" in out
