"""Exit codes and messages like the tools lawyers' IT already runs: a missing archive is said, not created; a
relative $WATCHER_DATABASE is relative to where the command runs; an unknown key lists what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["search", "données de santé"], ["deliveries"], ["untagged"]])
def test_a_reading_command_on_a_missing_archive_says_so_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    missing = tmp_path / "nowhere" / "watcher.db"
    monkeypatch.setenv("WATCHER_DATABASE", str(missing))
    result = CliRunner().invoke(main, ["--config", str(ROOT / "sources.toml"), *command])
    assert result.exit_code == 2, result.output
    assert f"no archive at {missing}" in result.stderr and "watcher fetch" in result.stderr
    assert not missing.exists() and not missing.parent.exists()


def test_a_relative_watcher_database_is_relative_to_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It used to resolve against the config's folder and silently open (create) an empty archive there."""
    from store import Store

    here = tmp_path / "here"
    here.mkdir()
    Store(here / "archive.db").close()
    monkeypatch.chdir(here)
    monkeypatch.setenv("WATCHER_DATABASE", "archive.db")
    from watcher.config import load_config

    config = load_config(ROOT / "sources.toml")
    assert config.database == here / "archive.db"
    result = CliRunner().invoke(main, ["--config", str(ROOT / "sources.toml"), "search", "santé"])
    assert result.exit_code == 1 and "no result for 'santé'" in result.stderr  # the (empty) archive was found
    assert not (ROOT / "archive.db").exists()


def test_the_unknown_key_message_lists_the_kind_s_keys_and_every_source_s(tmp_path: Path) -> None:
    config = tmp_path / "sources.toml"
    config.write_text('[[source]]\nname = "cnil"\nkind = "feed"\nurl = "https://www.cnil.fr/fr/rss.xml"\n'
                      'intervall = "3h"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "fetch"])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "intervall: unknown key for kind feed; feed accepts:" in message
    assert "every source accepts: name, kind, url, interval, lang, enabled, label, publisher" in message


def test_every_command_takes_config() -> None:
    import click

    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None and any("--config" in p.opts for p in command.params), name
