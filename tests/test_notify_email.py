"""E-mail alerts end to end against a real SMTP server (aiosmtpd on 127.0.0.1), faults included."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_notify_support import (
    SmtpSink,
    cnil_items,
    email_channel,
    free_port,
    html_part,
    seed,
    subscription,
    text_part,
    write_config,
)

from store import Store
from watcher.config import load_config
from watcher.notify import build_channel
from watcher.notify.service import Outcome, deliver, load_alerts

T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)


@pytest.fixture
def sink() -> SmtpSink:
    with SmtpSink() as server:
        yield server


def _setup(tmp_path: Path, port: int, subs: str, alerts: str = "") -> tuple[Path, Store, list[dict]]:
    path = write_config(tmp_path, email_channel(port) + subs, settings=alerts)
    store = Store(load_config(path).database)
    rows = cnil_items()
    seed(store, rows, {rows[0]["id"]: [("personal-data", 0.9)], rows[1]["id"]: [("health-data", 0.8), ("personal-data", 0.6)],
                       rows[5]["id"]: [("health-data", 0.95)], rows[3]["id"]: [("health-data", 0.3)]})
    return path, store, rows


def _deliver(path: Path, store: Store, now: datetime, **kw: object) -> Outcome:
    return deliver(store, load_config(path), now, **kw)  # type: ignore[arg-type]


def test_instant_alerts_arrive_once_with_headers_parts_and_escaping(tmp_path: Path, sink: SmtpSink) -> None:
    path, store, rows = _setup(tmp_path, sink.port, subscription("alice", themes=["health-data"]))
    hostile = {**rows[2], "id": "cnil:hostile", "title": 'Avis <script>alert("x")</script> & *gras* <!channel>'}
    seed(store, [hostile], {"cnil:hostile": [("health-data", 0.7)]})
    first = _deliver(path, store, T0)
    assert first.planned == 3 and len(first.report.sent) == 3 and not first.report.failed
    mails = sink.messages
    assert len(mails) == 3
    by_item = {str(m["X-Watcher-Subscription"]) + str(m["Subject"]): m for m in mails}
    assert all(m["To"].addresses[0].addr_spec == "alice@cabinet-test.fr" for m in mails)
    # Message-ID is derived from the ledger key, and recorded there
    ledger = {r["message_id"]: r for r in store.deliveries("sent")}
    assert set(sink.message_ids()) == set(ledger)
    channel = build_channel(load_alerts(load_config(path)).channel("mail"))
    assert all(channel.message_id(r["key"]) == mid for mid, r in ledger.items())
    health = next(m for m in mails if rows[5]["title"][:30] in str(m["Subject"]))
    assert str(health["Subject"]).startswith("[Veille] Nouveau texte : Données de santé")
    assert str(health["List-Unsubscribe"]) == "<mailto:veille@cabinet-test.fr?subject=desabonnement>"
    assert health.get_content_type() == "multipart/alternative"
    text, html = text_part(health), html_part(health)
    assert rows[5]["url"] in text and "mots-clés du thème health-data" in text
    assert "Se désabonner : mailto:veille@cabinet-test.fr?subject=desabonnement" in text  # visible, not only a header
    assert "alice" not in text.lower() and "alice" not in html.lower()  # no internal subscription name
    assert f'href="{rows[5]["url"]}"' in html and "https://archive.example.org/watcher/items/cnil~3A" in html
    hostile_mail = next(m for m in mails if "Avis" in str(m["Subject"]))
    hostile_html = html_part(hostile_mail)
    assert "<script>" not in hostile_html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in hostile_html
    assert "&lt;!channel&gt;" in hostile_html and "&amp; *gras*" in hostile_html
    assert len(by_item) == 3
    # a second run, and a third after a restart, send nothing more
    again = _deliver(path, store, T0 + timedelta(minutes=5))
    store.close()
    store = Store(load_config(path).database)
    third = _deliver(path, store, T0 + timedelta(days=2))
    assert again.planned == 0 and again.report.sent == [] and third.report.sent == []
    assert len(sink.messages) == 3 and store.delivery_counts() == {"sent": 3}


def test_daily_digest_groups_by_theme_in_english_and_is_sent_once(tmp_path: Path, sink: SmtpSink) -> None:
    subs = subscription("bob", themes=["health-data", "personal-data"], cadence="daily", at="08:00", lang="en")
    path, store, rows = _setup(tmp_path, sink.port, subs)
    before = _deliver(path, store, T0)  # 20:00 in Paris: today's 08:00 digest is in the past, matches are newer
    assert before.report.sent == [] and sink.messages == []
    next_morning = datetime(2026, 6, 17, 6, 5, tzinfo=UTC)  # 08:05 in Paris
    outcome = _deliver(path, store, next_morning)
    assert outcome.planned == 1 and len(outcome.report.sent) == 1
    (mail,) = sink.messages
    assert str(mail["Subject"]) == "[Watch] Daily digest of 17 June 2026: 3 texts"
    html = html_part(mail)
    rgpd, sante = html.index('data-theme="personal-data"'), html.index('data-theme="health-data"')
    assert sante < rgpd, "themes in the taxonomy's order"
    assert sante < html.index(rows[1]["id"]) < rgpd < html.index(rows[0]["id"])  # item 1 under its first theme
    assert "<h2>Health data (2)</h2>" in html and "<h2>Personal data protection (1)</h2>" in html
    assert rows[3]["id"] not in html  # 0.3 is below min_score
    # the kind of act by its label, the date as written in English
    assert "article | cnil | 16 June 2026" in text_part(mail)
    _deliver(path, store, next_morning + timedelta(hours=3))
    assert len(sink.messages) == 1


def test_closed_port_is_retried_with_backoff_then_held(tmp_path: Path) -> None:
    subs = subscription("carol", themes=["personal-data"])
    path, store, _ = _setup(tmp_path, free_port(), subs, alerts='[alerts]\nmax_attempts = 3\nretry_after = "5m"')
    first = _deliver(path, store, T0)  # rgpd: two items, so two alerts
    assert len(first.report.failed) == 2 and "cannot reach 127.0.0.1" in first.report.failed[0][1]
    rows = store.deliveries()
    assert {(r["state"], r["attempts"], r["next_attempt_at"]) for r in rows} == {
        ("failed", 1, "2026-06-16T18:05:00Z")}
    assert _deliver(path, store, T0 + timedelta(minutes=4)).report.failed == []  # not due yet
    second = _deliver(path, store, T0 + timedelta(minutes=5))
    assert len(second.report.failed) == 2
    assert {r["next_attempt_at"] for r in store.deliveries()} == {"2026-06-16T18:15:00Z"}  # doubled
    third = _deliver(path, store, T0 + timedelta(minutes=15))
    assert len(third.report.held) == 2 and "gave up after 3 attempts" in third.report.held[0][1]
    assert store.delivery_counts() == {"held": 2}
    assert store.requeue_deliveries(now="2026-06-16T19:00:00Z") == 2 and store.delivery_counts() == {"pending": 2}


@pytest.mark.parametrize(
    ("stage", "code", "state"),
    [
        ("rcpt", "450 4.2.2 Mailbox full, try later", "failed"),
        ("rcpt", "550 5.1.1 No such user", "held"),
        ("data", "451 4.3.0 Temporary local problem", "failed"),
        ("data", "554 5.7.1 Message rejected as spam", "held"),
    ],
)
def test_smtp_refusals_4xx_retry_and_5xx_are_held(tmp_path: Path, sink: SmtpSink, stage: str, code: str,
                                                 state: str) -> None:
    path, store, _ = _setup(tmp_path, sink.port, subscription("dan", themes=["personal-data"]))
    (sink.handler.rcpt_codes if stage == "rcpt" else sink.handler.data_codes).append(code)
    outcome = _deliver(path, store, T0)  # two rgpd alerts: the first meets the refusal, the second goes
    assert len(outcome.report.sent) == 1 and len(sink.messages) == 1
    row = next(r for r in store.deliveries() if r["state"] != "sent")
    assert row["state"] == state and code.split()[0] in row["last_error"]
    if state == "failed":
        retry = _deliver(path, store, T0 + timedelta(hours=1))
        assert retry.report.sent == [row["key"]] and len(sink.messages) == 2
        assert store.get_delivery(row["key"])["attempts"] == 2  # type: ignore[index]
    else:
        assert outcome.report.held and "permanent failure" in outcome.report.held[0][1]
        assert _deliver(path, store, T0 + timedelta(days=1)).report.sent == []


def test_a_removed_theme_cancels_a_pending_alert(tmp_path: Path, sink: SmtpSink) -> None:
    path, store, rows = _setup(tmp_path, sink.port, subscription("erin", themes=["personal-data"]))
    from watcher.notify import plan_deliveries

    plan_deliveries(store, load_alerts(load_config(path)), T0)
    store.add_label(rows[0]["id"], "personal-data", "remove", now="2026-06-16T18:01:00Z", author="juriste")
    outcome = _deliver(path, store, T0 + timedelta(minutes=2))
    assert {r["item_id"]: r["state"] for r in store.deliveries()} == {rows[0]["id"]: "cancelled",
                                                                        rows[1]["id"]: "sent"}
    assert len(outcome.report.cancelled) == 1 and len(sink.messages) == 1


def test_each_message_id_arrives_once_across_many_runs(tmp_path: Path, sink: SmtpSink) -> None:
    subs = subscription("fay", themes=["health-data", "personal-data"]) + subscription("gus", themes=["health-data"], cadence="daily")
    path, store, _ = _setup(tmp_path, sink.port, subs)
    for hours in range(0, 72, 6):
        _deliver(path, store, T0 + timedelta(hours=hours))
    counts = Counter(sink.message_ids())
    assert len(counts) == 4 and set(counts.values()) == {1}


def test_starttls_required_but_not_offered_is_held_not_sent_in_clear(tmp_path: Path, sink: SmtpSink) -> None:
    channel = email_channel(sink.port).replace('security = "plain"', 'security = "starttls"')
    path = write_config(tmp_path, channel + subscription("hal", themes=["personal-data"]))
    store = Store(load_config(path).database)
    rows = cnil_items()
    seed(store, rows, {rows[0]["id"]: [("personal-data", 0.9)]})
    outcome = _deliver(path, store, T0)
    assert sink.messages == [] and len(outcome.report.held) == 1
    assert "STARTTLS" in outcome.report.held[0][1] and "permanent" in outcome.report.held[0][1]
