"""Versions people can read: `watcher versions ITEM` prints what changed as a unified diff (exit 1 when nothing did,
2 for an unknown item), and a subscription with `updates = true` gets an "updated" e-mail in a real SMTP server
when an item it was sent changes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from click.testing import CliRunner
from test_notify_support import SmtpSink, email_channel, subscription, text_part, write_config

from store import Store
from watcher.cli.alerts import COMMANDS
from watcher.config import load_config
from watcher.legal.versions import diff_versions
from watcher.models import Item
from watcher.records import item_to_row

ROOT = Path(__file__).resolve().parents[1]
# the real CNIL délibération n° 2026-047 (tests/fixtures/cnil), as the dila-cnil kind reads it
CNIL = ROOT / "tests/fixtures/cnil/dila_CNILTEXT000054047151_deliberation_2026-047_recommandation_credit.xml"


def _deliberation() -> Item:
    from watcher.sources import dila_cnil
    from watcher.sources.dila_common import parse_xml

    return dila_cnil.text_item(parse_xml(CNIL.read_bytes(), source="cnil", what="a CNIL text"))


def _rectified(item: Item) -> Item:
    """The same text re-delivered with one sentence corrected (what a rectificatif does)."""
    first = item.text.split(".")[0]
    return replace(item, text=item.text.replace(first, first + " (texte rectifié)", 1))


def _archive(tmp_path: Path, config: Path | None = None) -> tuple[Path, Item]:
    item = _deliberation()
    database = load_config(config).database if config else tmp_path / "watcher.db"
    store = Store(database)
    store.upsert_items([{**item_to_row(item), "published": "2026-06-16T16:00:00Z"}], "2026-06-16T16:00:00Z")
    store.close()
    return database, item


def test_the_diff_shows_the_changed_sentence_only() -> None:
    item = _deliberation()
    old, new = item_to_row(item), item_to_row(_rectified(item))
    diffs = diff_versions([{**old, "version": 1}, {**new, "version": 2, "seen_at": "2026-06-17T08:00:00Z"}])
    assert len(diffs) == 1 and diffs[0].fields == ("text",)
    added = [line for line in diffs[0].text.splitlines() if line.startswith("+") and not line.startswith("+++")]
    removed = [line for line in diffs[0].text.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert len(added) == len(removed) == 1 and "(texte rectifié)" in added[0]


def _watcher(*args: str, database: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "sources.toml").write_text(f'[settings]\ndatabase = "{database}"\n', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "watcher", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_watcher_versions_prints_a_readable_diff(tmp_path: Path) -> None:
    database, item = _archive(tmp_path)
    once = _watcher("versions", item.id, database=database, cwd=tmp_path)
    assert once.returncode == 1 and "one version only" in once.stderr
    store = Store(database)
    store.upsert_items([item_to_row(_rectified(item))], "2026-06-17T08:00:00Z")
    store.close()
    result = _watcher("versions", item.id, database=database, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("version 1 → 2 (2026-06-17T08:00:00Z)\n--- text (v1)\n+++ text (v2)\n")
    assert "(texte rectifié)" in result.stdout
    missing = _watcher("versions", "cnil:nothing", database=database, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no item 'cnil:nothing'")


@click.group()
def group() -> None:
    """Stands for the main ``watcher`` group."""


for command in COMMANDS:
    group.add_command(command)


def test_an_updates_subscription_is_told_when_a_text_it_got_changes(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        config = write_config(tmp_path, email_channel(sink.port)
                              + subscription("suivi", themes=[], acts=["CNILTEXT000054047151"], updates=True)
                              + subscription("sans", themes=[], acts=["CNILTEXT000054047151"]))
        database, item = _archive(tmp_path, config)
        from watcher.legal.links import link_pending

        store = Store(database)
        store.upsert_items([{**item_to_row(replace(item, id="cnil-news:commentary", url="https://www.cnil.fr/x",
                                                   title="La CNIL publie sa délibération CNILTEXT000054047151",
                                                   identifiers={})), "published": "2026-06-16T16:00:00Z"}],
                           "2026-06-16T16:00:00Z")
        link_pending(store, datetime(2026, 6, 16, 16, 30, tzinfo=UTC))
        store.close()

        def deliver(now: str) -> None:
            result = CliRunner().invoke(group, ["deliver", "--config", str(config), "--now", now],
                                        catch_exceptions=False)
            assert result.exit_code == 0, result.output

        deliver("2026-06-16T17:00:00Z")
        first = len(sink.messages)
        assert first == 2  # one per subscription: the commentary that names the text
        store = Store(database)
        store.upsert_items([{**item_to_row(replace(item, id="cnil-news:commentary", url="https://www.cnil.fr/x",
                                                   title="La CNIL publie sa délibération CNILTEXT000054047151 "
                                                         "(mise à jour)", identifiers={})),
                             "published": "2026-06-16T16:00:00Z"}], "2026-06-17T08:00:00Z")
        store.close()
        deliver("2026-06-17T09:00:00Z")
        deliver("2026-06-17T10:00:00Z")  # asked twice: told once
        updated = sink.messages[first:]
        assert [str(m["To"]) for m in updated] == ["Suivi <suivi@cabinet-test.fr>"]
        assert str(updated[0]["Subject"]).startswith("[Veille] Texte modifié : La CNIL publie sa délibération")
        assert "(mise à jour)" in text_part(updated[0])
