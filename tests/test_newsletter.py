"""The weekly newsletter on a real archive: the draft (grouping, ranking, same-act clusters, health notes), edits
under optimistic versions, publishing through the ledger to a real SMTP server (aiosmtpd) exactly once,
unsubscribing, CSV import, exports and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from archive_support import copy_archive, write_config
from click.testing import CliRunner
from test_notify_support import SmtpSink, email_channel, html_part, text_part

from store import Store
from watcher.cli import main
from watcher.config import load_config
from watcher.newsletter.build import Week, act_rank, clusters, order_entries
from watcher.newsletter.config import load_newsletter
from watcher.newsletter.service import DraftConflict, Newsletter, delivery_key
from watcher.util.errors import ConfigError, WatcherError

NOW = datetime(2026, 7, 27, 9, 0, tzinfo=UTC)
WEEK = "2026-W30"  # 20-26 July 2026: CNIL news on AI and personal data, an EDPB statement, an ANSM notice


@pytest.fixture
def sink() -> SmtpSink:
    with SmtpSink() as server:
        yield server


def _letter(tmp_path: Path, archive_built: Path, sink: SmtpSink | None = None, extra: str = "") -> Newsletter:
    database = copy_archive(archive_built, tmp_path / "db")
    channel = email_channel(sink.port) if sink else ""
    table = ('[newsletter]\ntitle = "Lettre santé & données"\n'
             + ('channel = "mail"\n' if sink else "")
             + 'subscribers = ["Alice Martin <alice@cabinet-test.fr>", "bruno@cabinet-test.fr"]\n')
    path = write_config(tmp_path, database, extra=channel + table + extra, public_url="https://archive.example.org")
    return Newsletter(Store(database), load_config(path))


def test_week_bounds_are_local_mondays_in_utc() -> None:
    week = Week.of("2026-W30", NOW, "Europe/Paris")
    assert (week.label, week.start, week.end) == ("2026-W30", "2026-07-19T22:00:00Z", "2026-07-26T22:00:00Z")
    assert Week.of(None, NOW, "Europe/Paris").label == "2026-W31"
    with pytest.raises(WatcherError, match="not an ISO week"):
        Week.of("July", NOW, "Europe/Paris")


@pytest.mark.parametrize(("nature", "rank"), [
    ("loi", 0), ("LOI", 0), ("decret", 2), ("DECRET", 2), ("décret", 2), ("arrete", 3), ("Arrêté", 3),
    ("deliberation-sanction", 4), ("Recommandation/Lignes directrices", 4), ("information-securite", 6),
    ("actualite", 9), ("autre", 9), ("", 9), (None, 9),
])
def test_kind_of_act_rank(nature: str | None, rank: int) -> None:
    assert act_rank(nature) == rank


def test_items_about_the_same_act_form_one_cluster() -> None:
    found = clusters({
        "jorf:decret": [("nor_base", "SPRS2611643"), ("decret", "2025-895"), ("jorfcont", "JORFCONT000054245240")],
        "jorf:rectificatif": [("nor_base", "SPRS2611643")],  # same NOR base: the same act
        "firm:post": [("cites_decret", "2025-895"), ("cites_eu_regulation", "2016/679")],  # comments on the decree
        "jorf:other": [("jorfcont", "JORFCONT000054245240"), ("date_texte", "2026-06-12")],  # same JO issue only
        "cnil:news": [("cites_eu_regulation", "2016/679")],  # cites the GDPR, which is not an item of the week
    })
    assert found == {"jorf:decret": "firm:post", "jorf:rectificatif": "firm:post", "firm:post": "firm:post",
                     "jorf:other": "jorf:other", "cnil:news": "cnil:news"}


def test_ranking_puts_decrees_before_news_and_keeps_one_act_together() -> None:
    def item(item_id: str, source: str, nature: str, theme: str = "health-data", score: float = 0.9) -> dict:
        return {"id": item_id, "source": source, "nature": nature, "themes": [{"theme": theme, "score": score}]}

    candidates = [item("cnil:news", "cnil", "actualite", score=0.99), item("jorf:arrete", "jorf", "ARRETE"),
                  item("firm:post", "houdart", "article", score=0.95), item("jorf:decret", "jorf", "DECRET", score=0.7),
                  item("cnil:ai", "cnil", "actualite", theme="ai")]
    identifiers = {"cnil:news": [], "jorf:arrete": [], "firm:post": [("cites_decret", "2025-895")],
                   "jorf:decret": [("decret", "2025-895")], "cnil:ai": []}
    sources = {s.name: s for s in load_config(Path(__file__).resolve().parents[1] / "sources.toml").sources}
    entries = order_entries(candidates, identifiers, sources, ["health-data", "ai"], shortlist=3)
    assert [(e["theme"], e["item_id"], e["kept"]) for e in entries] == [
        ("health-data", "jorf:decret", 1), ("health-data", "firm:post", 1),  # the law firm's post on that decree
        ("health-data", "jorf:arrete", 1), ("health-data", "cnil:news", 0),  # beyond the shortlist: dropped
        ("ai", "cnil:ai", 1)]


def test_draft_of_a_real_week_groups_by_theme_and_notes_failing_sources(tmp_path: Path, archive_built: Path) -> None:
    letter = _letter(tmp_path, archive_built)
    draft, created = letter.build_draft(WEEK, NOW)
    assert created and draft["week"] == WEEK and draft["version"] == 1 and draft["state"] == "draft"
    entries = letter.store.draft_entries(draft["id"])
    themes = [e["theme"] for e in entries]
    assert set(themes) == {"ai", "personal-data", "health-products"}
    assert themes == sorted(themes, key=["ai", "personal-data", "health-products"].index)  # taxonomy order, grouped
    assert all("2026-07-19T22:00:00Z" <= e["published"] < "2026-07-26T22:00:00Z" for e in entries)
    assert all(e["reason"] for e in entries)
    # EUR-Lex answered the recording with its bot wall: the editor is told, the readers never are
    assert any(n.startswith("eurlex-oj:") and "failing now" in n for n in draft["health_notes"])
    assert "eurlex" not in letter.preview(draft["id"]).html
    again, created_again = letter.build_draft(WEEK, NOW + timedelta(hours=1))
    assert not created_again and again["id"] == draft["id"]


def test_a_stale_edit_is_refused_with_a_conflict_and_nothing_is_lost(tmp_path: Path, archive_built: Path) -> None:
    letter = _letter(tmp_path, archive_built)
    draft, _ = letter.build_draft(WEEK, NOW)
    first = letter.store.draft_entries(draft["id"])[0]["item_id"]
    letter.edit(draft["id"], 1, editor="alice", now=NOW, introduction="Alice's introduction",
                abstracts={first: "Alice's abstract"})
    with pytest.raises(DraftConflict, match="changed by alice since you opened it .your version 1, now 2."):
        letter.edit(draft["id"], 1, editor="bruno", now=NOW, introduction="Bruno's introduction")
    with pytest.raises(DraftConflict):
        letter.keep(draft["id"], 1, first, False, editor="bruno", now=NOW)
    current, entries = letter.draft(draft["id"])
    assert current["introduction"] == "Alice's introduction" and current["version"] == 2
    assert entries[0]["abstract"] == "Alice's abstract" and entries[0]["kept"] == 1
    letter.keep(draft["id"], 2, first, False, editor="bruno", now=NOW)  # on the current version: accepted
    assert letter.draft(draft["id"])[1][0]["kept"] == 0


def test_moving_an_entry_swaps_it_with_its_neighbour_of_the_same_theme(tmp_path: Path, archive_built: Path) -> None:
    letter = _letter(tmp_path, archive_built)
    draft, _ = letter.build_draft(WEEK, NOW)
    entries = letter.store.draft_entries(draft["id"])
    theme = "personal-data"
    same = [e["item_id"] for e in entries if e["theme"] == theme]
    assert len(same) >= 3
    letter.move(draft["id"], 1, same[1], -1, editor="alice", now=NOW)
    after = [e["item_id"] for e in letter.store.draft_entries(draft["id"]) if e["theme"] == theme]
    assert after[:2] == [same[1], same[0]] and sorted(after) == sorted(same)
    letter.move(draft["id"], 2, after[0], -1, editor="alice", now=NOW)  # already first: nothing moves
    assert [e["item_id"] for e in letter.store.draft_entries(draft["id"]) if e["theme"] == theme] == after


def test_publish_sends_once_to_each_active_subscriber_and_archives(tmp_path: Path, archive_built: Path,
                                                                   sink: SmtpSink) -> None:
    letter = _letter(tmp_path, archive_built, sink)
    draft, _ = letter.build_draft(WEEK, NOW)  # the config's addresses join the list
    assert len(letter.store.subscribers()) == 2 and letter.sync_subscribers(NOW) == 0
    entries = letter.store.draft_entries(draft["id"])
    dropped, kept = entries[0], entries[1]
    letter.keep(draft["id"], 1, dropped["item_id"], False, editor="alice", now=NOW)
    letter.edit(draft["id"], 2, editor="alice", now=NOW, introduction="Une semaine chargée.",
                abstracts={kept["item_id"]: "Ce qu'il faut retenir <b>vraiment</b>."})
    queued = letter.publish(draft["id"], 3, editor="alice", now=NOW)
    assert queued == 2
    report = letter.send(draft["id"], NOW)
    assert sorted(report.sent) == ["alice@cabinet-test.fr", "bruno@cabinet-test.fr"]
    mails = sink.messages
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == sorted(report.sent)
    mail = next(m for m in mails if "alice" in str(m["To"]))
    assert str(mail["Subject"]) == "Lettre santé & données — semaine du 20 juillet 2026"
    html, text = html_part(mail), text_part(mail)
    assert "Une semaine chargée." in html and "Ce qu&#39;il faut retenir &lt;b&gt;vraiment&lt;/b&gt;." in html
    assert kept["title"].split()[0] in text and dropped["title"] not in html
    token = letter.store.subscribers()[0]["token"]
    assert str(mail["List-Unsubscribe"]).startswith("<https://archive.example.org/-/newsletter/unsubscribe?token=")
    assert "eurlex-oj" not in html  # source health stays with the editors
    # archived with its items and their abstracts, in order
    issue = letter.store.issue(draft["id"])
    assert issue is not None and issue["html"].count('class="entry"') == len(entries) - 1
    assert "Une semaine chargée." in issue["markdown"]
    rows = letter.store.db.execute("select item_id, abstract from newsletter_issue_items where issue_id = ? "
                                   "order by position", [draft["id"]]).fetchall()
    assert rows[0] == (kept["item_id"], "Ce qu'il faut retenir <b>vraiment</b>.")
    # exactly once: publishing again is refused, sending again sends nothing, a new subscriber gets it later
    with pytest.raises(WatcherError, match="already published"):
        letter.publish(draft["id"], 4, editor="alice", now=NOW)
    assert letter.send(draft["id"], NOW + timedelta(minutes=1)).already == 2 and len(sink.messages) == 2
    letter.add_subscribers([("Claire", "claire@cabinet-test.fr")], NOW, origin="test")
    assert letter.queue(draft["id"], NOW) == 1
    assert letter.send(draft["id"], NOW).sent == ["claire@cabinet-test.fr"] and len(sink.messages) == 3
    assert token and {r["key"] for r in letter.store.newsletter_deliveries(draft["id"])} == {
        delivery_key(draft["id"], a) for a in ("alice@cabinet-test.fr", "bruno@cabinet-test.fr", "claire@cabinet-test.fr")}


def test_unsubscribed_addresses_are_not_sent_and_stay_out(tmp_path: Path, archive_built: Path, sink: SmtpSink) -> None:
    letter = _letter(tmp_path, archive_built, sink)
    letter.sync_subscribers(NOW)
    bruno = next(s for s in letter.store.subscribers() if s["email"] == "bruno@cabinet-test.fr")
    assert letter.store.unsubscribe(now="2026-07-27T09:00:00Z", token=bruno["token"])
    assert not letter.store.unsubscribe(now="2026-07-27T09:00:00Z", token=bruno["token"])
    assert letter.sync_subscribers(NOW) == 0  # the config still lists bruno: he stays out
    draft, _ = letter.build_draft(WEEK, NOW)
    letter.publish(draft["id"], 1, editor="alice", now=NOW)
    letter.send(draft["id"], NOW)
    assert [m["To"].addresses[0].addr_spec for m in sink.messages] == ["alice@cabinet-test.fr"]


def test_a_refused_recipient_is_held_and_a_down_server_retried(tmp_path: Path, archive_built: Path,
                                                               sink: SmtpSink) -> None:
    letter = _letter(tmp_path, archive_built, sink)
    letter.sync_subscribers(NOW)
    sink.handler.rcpt_codes = ["", "550 5.1.1 no such user"]  # sent in address order: alice, then bruno
    draft, _ = letter.build_draft(WEEK, NOW)
    letter.publish(draft["id"], 1, editor="alice", now=NOW)
    report = letter.send(draft["id"], NOW)
    assert report.sent == ["alice@cabinet-test.fr"] and [a for a, _ in report.held] == ["bruno@cabinet-test.fr"]
    states = {r["recipient"]: r["state"] for r in letter.store.newsletter_deliveries(draft["id"])}
    assert states == {"alice@cabinet-test.fr": "sent", "bruno@cabinet-test.fr": "held"}


def test_csv_import_adds_valid_addresses_and_names_the_rejected(tmp_path: Path, archive_built: Path) -> None:
    letter = _letter(tmp_path, archive_built)
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email,name\nclaire@cabinet-test.fr,Claire Dubois\nnot-an-address,X\n"
                        "ALICE@cabinet-test.fr,Alice\n", encoding="utf-8")
    added, rejected = letter.import_csv(csv_file, NOW)
    assert added == 2 and rejected == ["not-an-address"]
    assert {s["email"] for s in letter.store.subscribers()} == {"claire@cabinet-test.fr", "alice@cabinet-test.fr"}
    assert len({s["token"] for s in letter.store.subscribers()}) == 2


def test_unknown_newsletter_key_is_an_error_naming_it(tmp_path: Path, archive_built: Path) -> None:
    path = write_config(tmp_path, tmp_path / "w.db", extra='[newsletter]\nchanel = "mail"\n')
    with pytest.raises(ConfigError, match=r"\[newsletter\].*chanel"):
        load_newsletter(load_config(path))


def test_cli_draft_edit_show_publish_export(tmp_path: Path, archive_built: Path, sink: SmtpSink) -> None:
    letter = _letter(tmp_path, archive_built, sink)
    config = str(letter.config.path)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["--config", config, "newsletter", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "built draft 1 for 2026-W30" in run("draft", "--week", WEEK)
    first = letter.store.draft_entries(1)[0]["item_id"]
    run("edit", "1", "--drop", first, "--intro", "Bonjour.")
    shown = run("show", "1")
    assert f"- {first}" in shown and "version 3" in shown
    assert "Bonjour." in run("show", "1", "--preview", "markdown")
    published = run("publish", "1")
    assert "issue 1 published" in published and "sent 2" in published and len(sink.messages) == 2
    assert "already sent 2" in run("send", "1") and len(sink.messages) == 2
    out = run("export", "1", "--out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "newsletter-2026-W30.md").read_text(encoding="utf-8").startswith("# Lettre santé")
    assert "newsletter-2026-W30.html" in out


def test_every_newsletter_key_command_option_and_canned_query_is_documented() -> None:
    import json

    from watcher.cli.newsletter import newsletter
    from watcher.newsletter.config import NEWSLETTER_KEYS

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "archive.md").read_text(encoding="utf-8")
    missing = [f"`{k}`" for k in NEWSLETTER_KEYS if f"`{k}`" not in doc]
    for name, command in newsletter.commands.items():
        missing += [f"watcher newsletter {name}"] if f"watcher newsletter {name}" not in doc else []
        missing += [p.opts[0] for p in command.params  # --config: every command's, in the README
                    if p.param_type_name == "option" and p.opts[0] != "--config" and p.opts[0] not in doc]
    metadata = json.loads((root / "store" / "metadata.json").read_text(encoding="utf-8"))
    missing += [q for q in metadata["databases"]["watcher"]["queries"] if f"`{q}`" not in doc]
    missing += [url for url in ("/-/atom/theme/<theme>.atom", "/watcher/items.atom", "/-/newsletter/unsubscribe")
                if url not in doc]
    assert missing == []
