"""Operations alerts end to end: real recorded feeds and pages served by a local HTTP server, the real HTTP client
and store, and the admin's messages received by a real SMTP server. One message when an incident opens, none while
it lasts, one when it heals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from test_notify_support import CNIL_BIG_FEED, CNIL_FEED, SmtpSink, email_channel, write_config

from store import Store
from watcher.config import Config, load_config
from watcher.http import HttpClient
from watcher.notify.ops import OpsReport, check_sources
from watcher.notify.service import deliver
from watcher.pipeline import ingest
from watcher.replay import ReplayServer
from watcher.util.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests/fixtures"
EMPTY_FEED = FIXTURES / "reconstructed/reconstructed_cnil_feed_0items.xml"
HDH_LISTING = FIXTURES / "health_data_hub/hdh_listing_bibliotheque-algorithmes_page0.html"
HDH_DETAIL = FIXTURES / "health_data_hub/hdh_detail_eds-nlp.html"
CNIL_URL = "https://www.cnil.fr/fr/rss.xml"
RSS = {"content-type": "application/rss+xml"}
T0 = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)
ADMIN = '[admin]\nchannel = "mail"\nperson = "Camille (exploitation)"\nemail = "exploitation@cabinet-test.fr"\n'


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def _feed_source(**extra: str) -> str:
    lines = "".join(f'{k} = "{v}"\n' for k, v in extra.items())
    return f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{CNIL_URL}"\nlabel = "CNIL actualités"\n{lines}'


def _hdh_source() -> str:
    real = load_config(ROOT / "sources.toml").source("health-data-hub")
    options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in real.options.items())
    return f'[[source]]\nname = "health-data-hub"\nkind = "html"\nurl = "{real.url}"\n{options}'


def _subject(mail: EmailMessage) -> str:
    return " ".join(str(mail["Subject"]).split())  # as read: folding may double a space


class Run:
    """fetch -> check -> deliver, as the daemon does after each fetch, at a chosen time."""

    def __init__(self, path: Path, http: HttpClient):
        self.config: Config = load_config(path)
        self.store = Store(self.config.database)
        self.http = http

    def __call__(self, now: datetime) -> OpsReport:
        ingest(self.config, self.store, self.http, now, self.config.sources)
        report = check_sources(self.store, self.config, now)
        deliver(self.store, self.config, now)
        return report


def _run(tmp_path: Path, body: str, port: int, http_client: Callable[..., HttpClient], admin: str = ADMIN) -> Run:
    path = write_config(tmp_path, body + email_channel(port) + admin, settings="failure_alert_after = 3\n")
    return Run(path, http_client(retries=0))


def test_a_failing_source_tells_the_admin_once_then_once_when_it_heals(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers=RSS)
    for _ in range(4):
        replay_server.add(CNIL_URL, status=500)
    replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers=RSS)
    run = _run(tmp_path, _feed_source(), sink.port, http_client)
    reports = [run(T0 + timedelta(hours=h)) for h in range(6)]
    assert [len(r.opened) for r in reports] == [0, 0, 0, 1, 0, 0]  # the third failure in a row opens it
    assert [r.closed for r in reports] == [[], [], [], [], [], [("cnil", "failing")]]
    mails = sink.messages
    assert len(mails) == 2 and len(set(sink.message_ids())) == 2
    assert all(m["To"].addresses[0].addr_spec == "exploitation@cabinet-test.fr" for m in mails)
    assert "Incident : Source CNIL actualités (cnil) en échec" in _subject(mails[0])
    text = mails[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "3 relevés en échec de suite ; dernière erreur : « 500 Internal Server Error" in text  # in French
    assert "Ouvert le " in text and "T" not in text.split("Ouvert le ", 1)[1].split("\n", 1)[0]  # a spoken time
    assert "Rétabli" in _subject(mails[1])
    assert run.store.open_incidents() == [] and len(run.store.incidents()) == 1
    assert run.store.delivery_counts() == {"sent": 2}


def test_a_listing_whose_selectors_match_nothing_is_reported_at_once(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    url = load_config(ROOT / "sources.toml").source("health-data-hub").url
    html = {"content-type": "text/html; charset=utf-8"}
    replay_server.add(url, body=HDH_LISTING.read_bytes(), headers=html)
    replay_server.add(url, body=HDH_DETAIL.read_bytes(), headers=html)  # a real page of another layout
    run = _run(tmp_path, _hdh_source(), sink.port, http_client)
    assert run(T0).opened == []
    second = run(T0 + timedelta(days=1))
    assert [(s, k) for s, k, _ in second.opened] == [("health-data-hub", "selectors")]
    assert "matched nothing" in second.opened[0][2]
    assert len(sink.messages) == 1 and "mise en page changée" in _subject(sink.messages[0])


def test_a_feed_that_suddenly_lists_nothing_is_reported(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    for _ in range(3):
        replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers=RSS)
    replay_server.add(CNIL_URL, body=EMPTY_FEED.read_bytes(), headers=RSS)
    replay_server.add(CNIL_URL, body=CNIL_BIG_FEED.read_bytes(), headers=RSS)
    run = _run(tmp_path, _feed_source(), sink.port, http_client)
    reports = [run(T0 + timedelta(hours=h)) for h in range(5)]
    assert [[(s, k) for s, k, _ in r.opened] for r in reports] == [[], [], [], [("cnil", "empty")], []]
    assert "0 items, where its last 3 fetches found 6 (median)" in reports[3].opened[0][2]
    assert reports[4].closed == [("cnil", "empty")] and len(sink.messages) == 2


def test_a_source_silent_past_its_cadence_is_reported_and_heals_with_a_new_item(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers=RSS)
    replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers=RSS)  # the same items: nothing new
    replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers=RSS)
    replay_server.add(CNIL_URL, body=CNIL_BIG_FEED.read_bytes(), headers=RSS)  # new items
    run = _run(tmp_path, _feed_source(expect_new_within="50h"), sink.port, http_client)
    quiet = [run(T0), run(T0 + timedelta(hours=49)), run(T0 + timedelta(hours=51)), run(T0 + timedelta(hours=52))]
    assert [len(r.opened) for r in quiet] == [0, 0, 1, 0] and quiet[3].closed == [("cnil", "silent")]
    assert "no new item since 2026-06-16T08:00:00Z (51 h; expected at least every 50 h)" in quiet[2].opened[0][2]
    assert [str(m["X-Watcher-Incident"]) for m in sink.messages] == ["cnil silent open", "cnil silent close"]


def test_without_an_admin_incidents_are_recorded_and_nothing_is_sent(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    replay_server.add(CNIL_URL, status=500)
    run = _run(tmp_path, _feed_source(), sink.port, http_client, admin="")
    for hour in range(4):
        run(T0 + timedelta(hours=hour))
    assert [(i["source"], i["kind"], i["open_key"]) for i in run.store.open_incidents()] == [("cnil", "failing", None)]
    assert sink.messages == [] and run.store.delivery_counts() == {}


def test_an_admin_on_an_unknown_channel_is_a_config_error(tmp_path: Path, sink: SmtpSink) -> None:
    path = write_config(tmp_path, _feed_source() + email_channel(sink.port) + ADMIN.replace('"mail"', '"ops"'))
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"\[admin\]: channel: no channel named 'ops'"):
        check_sources(Store(":memory:"), config, T0)


def test_every_admin_key_and_incident_kind_is_documented() -> None:
    from watcher.notify.ops import ADMIN_KEYS, KINDS

    doc = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    assert [k for k, help in ADMIN_KEYS.items() if f"| `{k}` | {help} |" not in doc] == []
    assert [k for k in KINDS if f"| `{k}` |" not in doc] == []
