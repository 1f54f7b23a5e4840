"""Fault cases of configuration: each is one line naming the file, the table and the key, never a traceback."""

from __future__ import annotations

from pathlib import Path

from harness import Outcome, case, cli, describe

SOURCE = '[[source]]\nname = "cnil"\nkind = "feed"\nurl = "https://www.cnil.fr/fr/rss.xml"\n'


def _run(folder: Path, text: str, args: tuple[str, ...], expected: str) -> Outcome:
    (folder / "sources.toml").write_text('[settings]\ndatabase = "watcher.db"\n' + text, encoding="utf-8")
    done = cli(folder, *args)
    return Outcome(done.clean(1, 2) and done.returncode != 0, True, True, expected in done.output, describe(done))


@case("bad-toml", "config")
def bad_toml(folder: Path) -> Outcome:
    """sources.toml is not valid TOML: one line with the file and the TOML error"""
    return _run(folder, SOURCE + "interval = \n", ("sources",), "not valid TOML")


@case("unknown-key", "config")
def unknown_key(folder: Path) -> Outcome:
    """a misspelt key in a [[source]]: the error names the table and the key"""
    return _run(folder, SOURCE + 'intervall = "1h"\n', ("sources",), "intervall")


@case("missing-secret", "config")
def missing_secret(folder: Path) -> Outcome:
    """a channel's secret variable is not set: named, and nothing is printed of other secrets"""
    text = (SOURCE + '[channel.team]\nkind = "slack"\nwebhook_env = "WATCHER_FAULTS_UNSET_WEBHOOK"\n')
    return _run(folder, text, ("notify-test", "team"), "WATCHER_FAULTS_UNSET_WEBHOOK")
