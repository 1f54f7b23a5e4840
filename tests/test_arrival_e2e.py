"""Every message the product promises, asserted where it arrives: the commands (and the daemon's own jobs, and a
real daemon process) run against a real local SMTP server (aiosmtpd) and a real local webhook, on a real archive
(the demo recordings fetched and keyword-classified, ``archive_built``). Each test checks what ARRIVED: how many
messages, to whom, their subjects, the titles of the items they carry, the unsubscribe header; a second run
sends nothing more. Every message that arrives also goes through the wording checker (``message_problems``).

Kinds: instant, daily, weekly, since (``deliver --since``), newsletter, ops (an incident opened and closed by a
cron ``watcher fetch``), notify-test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from archive_support import copy_archive
from archive_support import write_config as archive_config
from click.testing import CliRunner
from test_notify_support import CNIL_FEED, HookServer, SmtpSink, html_part, text_part

from watcher.cli import main
from watcher.daemon.schedule import Daemon, DaemonApp
from watcher.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-08-20T09:00:00Z"  # the day after the newest CNIL item of the recordings
UNSUBSCRIBE = "https://veille.cabinet-test.fr/desabonnement?email={email}"
SLACK_ENV = "WATCHER_ARRIVAL_SLACK"
PIRACY = "Piratage du système d’information des impôts"  # CNIL, 18 August 2026: personal data
ANSM_OCTOBER = ("Duloxétine", "Pyrukynd", "CPC des médicaments")  # ANSM, October 2026: health products

CHANNELS = f'''
[channel.mail]
kind = "email"
host = "127.0.0.1"
port = {{port}}
security = "plain"
from = "veille@cabinet-test.fr"
from_name = "Veille juridique"
unsubscribe = "{UNSUBSCRIBE}"
timeout = 5

[channel.team]
kind = "slack"
webhook_env = "{SLACK_ENV}"
timeout = 5
'''
SUBSCRIPTIONS = '''
[[subscription]]
name = "alice-instant"
person = "Alice Martin"
email = "alice@cabinet-test.fr"
themes = ["personal-data"]
cadence = "instant"
channel = "mail"

[[subscription]]
name = "alice-daily"
person = "Alice Martin"
email = "alice@cabinet-test.fr"
themes = ["health-products"]
cadence = "daily"
at = "08:00"
channel = "mail"

[[subscription]]
name = "bruno-weekly"
person = "Bruno Petit"
email = "bruno@cabinet-test.fr"
themes = ["personal-data", "health-products"]
cadence = "weekly"
day = "lundi"
at = "09:00"
channel = "mail"
introduction = "Veille du pôle santé et données."

[[subscription]]
name = "team-weekly"
person = "Pôle santé"
slack = "#veille-sante"
themes = ["health-products"]
cadence = "weekly"
day = "lundi"
at = "09:00"
channel = "team"

[[subscription]]
name = "claire-en"
person = "Claire Dubois"
email = "claire@cabinet-test.fr"
themes = ["personal-data"]
cadence = "instant"
lang = "en"
channel = "mail"
'''
ADMIN = '[admin]\nchannel = "mail"\nperson = "Exploitation"\nemail = "exploitation@cabinet-test.fr"\n'


class SignallingHook(HookServer):
    """The test webhook, which also signals each post (a test waits for an event, not a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.posts = _Signalling(self.arrived)


class _Signalling(list[Any]):
    def __init__(self, event: threading.Event):
        super().__init__()
        self.event = event

    def append(self, value: Any) -> None:
        super().append(value)
        self.event.set()


@dataclass
class World:
    """A copy of the real archive, its config (channels to the local SMTP server and webhook, five subscriptions
    of four people, an admin), the servers, and every message that arrived."""

    path: Path
    database: Path
    sink: SmtpSink
    hook: SignallingHook
    checked: list[str] = field(default_factory=list)

    def run(self, *args: str, now: str | None = NOW) -> tuple[int, str]:
        extra = ["--now", now] if now and args[0] in NOW_COMMANDS else []
        result = CliRunner().invoke(main, ["--config", str(self.path), *args, *extra], catch_exceptions=False)
        return result.exit_code, result.output

    def mails(self) -> list[EmailMessage]:
        return self.sink.messages

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sink.messages if address in str(m["To"])]


NOW_COMMANDS = {"deliver", "digest", "notify-test", "deliveries"}


@pytest.fixture
def world(tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    hook = SignallingHook()
    with SmtpSink() as sink, hook.running() as url:
        monkeypatch.setenv(SLACK_ENV, url)
        database = copy_archive(archive_built, tmp_path / "db")
        path = archive_config(tmp_path, database, public_url="https://archive.cabinet-test.fr",
                              extra=CHANNELS.replace("{port}", str(sink.port)) + SUBSCRIPTIONS + ADMIN)
        yield World(path, database, sink, hook)


def subjects(mails: list[EmailMessage]) -> list[str]:
    return sorted(str(m["Subject"]) for m in mails)


def assert_unsubscribe(mail: EmailMessage) -> None:
    address = str(mail["To"]).rsplit("<", 1)[-1].rstrip(">")
    link = UNSUBSCRIBE.replace("{email}", address.replace("@", "%40"))
    assert f"<{link}>" in str(mail["List-Unsubscribe"]) and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in text_part(mail) and link.replace("&", "&amp;") in html_part(mail)


def check_wording(world: World, mails: list[EmailMessage], lang: str = "fr") -> None:
    """The wording checker (test_arrival_wording) on messages that arrived: no internal id, no word of the other
    language in the product's wording, no ISO date, no score under the subscriptions' threshold (0.5 here)."""
    from test_arrival_wording import archive_own, message_problems

    from watcher.config import load_config

    names = [n for s in load_config(world.path).sources for n in (s.label, s.publisher, s.name)]
    own = archive_own(str(world.database))
    for mail in mails:
        found = message_problems(mail, lang, own, names=names)
        world.checked.append(f"{lang} {mail['Subject']}: {len(found)}")
        assert found == [], f"{mail['Subject']}: " + "; ".join(map(str, found))


def test_instant_alerts_arrive_once_each_in_the_subscriber_s_language(world: World) -> None:
    code, out = world.run("deliver")
    assert code == 0, out
    alice, claire = world.to("alice@cabinet-test.fr"), world.to("claire@cabinet-test.fr")
    assert len(world.mails()) == 2 and len(alice) == 1 and len(claire) == 1  # the weeklies and the daily wait
    assert str(alice[0]["Subject"]) == f"[Veille] Nouveau texte : {PIRACY} : les vérifications sont en cours"
    assert str(claire[0]["Subject"]).startswith(f"[Watch] New text: {PIRACY}")
    assert PIRACY in text_part(alice[0]) and PIRACY in html_part(alice[0])
    for mail in alice + claire:
        assert_unsubscribe(mail)
    check_wording(world, alice)
    check_wording(world, claire, "en")
    code, out = world.run("deliver")
    assert code == 0 and "sent 0" in out and len(world.mails()) == 2


def _digest_job(daemon: Daemon, job_id: str) -> None:
    """Run one of the daemon's digest jobs as its scheduler would (the function and arguments it registered)."""
    job = {job.id: job for job in daemon.build().get_jobs()}[job_id]
    job.func(*job.args, **job.kwargs)


def test_daily_and_weekly_digests_arrive_from_the_daemon_s_own_digest_jobs(world: World) -> None:
    code, _ = world.run("deliver")  # 20 August: the instant alerts go, the digests' matches wait
    assert code == 0 and len(world.mails()) == 2
    daemon = Daemon(DaemonApp(world.path))
    try:
        _digest_job(daemon, "digest:daily:08:00")  # on the real clock: the digest time has passed since then
        (daily,) = world.mails()[2:]
        assert str(daily["To"]) == "Alice Martin <alice@cabinet-test.fr>"
        assert str(daily["Subject"]).startswith("[Veille] Récapitulatif quotidien du ")
        assert str(daily["Subject"]).endswith(" : 3 textes")
        assert all(title in text_part(daily) for title in ANSM_OCTOBER) and PIRACY not in text_part(daily)
        assert_unsubscribe(daily)
        _digest_job(daemon, "digest:weekly:mon:09:00")
        (weekly,) = world.mails()[3:]
        assert str(weekly["To"]) == "Bruno Petit <bruno@cabinet-test.fr>"
        assert str(weekly["Subject"]).startswith("[Veille] Récapitulatif hebdomadaire du ")
        assert str(weekly["Subject"]).endswith(" : 4 textes")
        assert all(title in text_part(weekly) for title in (*ANSM_OCTOBER, PIRACY))
        assert "Veille du pôle santé et données." in text_part(weekly)
        assert_unsubscribe(weekly)
        (post,) = world.hook.posts
        assert post["channel"] == "#veille-sante" and post["text"].startswith("[Veille] Récapitulatif hebdomadaire")
        assert all(title in json.dumps(post, ensure_ascii=False) for title in ANSM_OCTOBER)
        check_wording(world, [m for m in world.mails() if "claire" not in str(m["To"])])
        check_wording(world, world.to("claire@cabinet-test.fr"), "en")
        _digest_job(daemon, "digest:daily:08:00")
        _digest_job(daemon, "digest:weekly:mon:09:00")
        assert len(world.mails()) == 4 and len(world.hook.posts) == 1  # each digest once
    finally:
        daemon.app.close()


def test_deliver_since_sends_one_digest_per_person_and_channel_and_later_runs_send_what_waited(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = world.run("deliver", "--since", "2026-08-01", "--dry-run")
    assert code == 0 and world.mails() == []
    assert out.count("would plan  since") == 4  # Alice (two subscriptions, one mail), Bruno, the team, Claire
    assert out.count("would plan  since    to alice@cabinet-test.fr via mail") == 1
    url = os.environ.pop(SLACK_ENV)  # the team's webhook secret is missing for this run
    code, out = world.run("deliver", "--since", "2026-08-01")
    assert code == 2 and "4 digest(s) of what matched since 2026-08-01" in out and f"{SLACK_ENV}" in out
    since = [m for m in world.mails() if "depuis" in str(m["Subject"]) or "since" in str(m["Subject"])]
    assert sorted(str(m["To"]) for m in since) == ["Alice Martin <alice@cabinet-test.fr>",
                                                   "Bruno Petit <bruno@cabinet-test.fr>",
                                                   "Claire Dubois <claire@cabinet-test.fr>"]
    (alice,) = [m for m in since if "alice" in str(m["To"])]
    assert str(alice["Subject"]).startswith("[Veille] Récapitulatif depuis le 1er août 2026 : ")
    # her two subscriptions in one message: personal data (instant) and health products (daily)
    assert PIRACY in text_part(alice) and all(title in text_part(alice) for title in ANSM_OCTOBER)
    for mail in since:
        assert_unsubscribe(mail)
    check_wording(world, [m for m in world.mails() if "claire" not in str(m["To"])])
    check_wording(world, world.to("claire@cabinet-test.fr"), "en")
    assert world.hook.posts == []
    monkeypatch.setenv(SLACK_ENV, url)
    code, out = world.run("deliver")  # a later run sends the digest that waited for its channel
    assert code == 0, out
    (post,) = world.hook.posts
    assert post["channel"] == "#veille-sante" and "depuis le 1er août 2026" in post["text"]
    assert all(title in json.dumps(post, ensure_ascii=False) for title in ANSM_OCTOBER)
    before = len(world.mails())
    for args in (("deliver", "--since", "2026-08-01"), ("deliver",)):
        code, out = world.run(*args)
        assert code == 0 and "sent 0" in out
    assert len(world.mails()) == before and len(world.hook.posts) == 1


def test_a_since_digest_waiting_for_its_channel_is_sent_by_the_daemon(world: World, tmp_path: Path) -> None:
    url = os.environ.pop(SLACK_ENV)
    code, _ = world.run("deliver", "--since", "2026-08-01", "--subscription", "team-weekly")
    assert code == 2 and world.hook.posts == []
    daemon_config = tmp_path / "daemon.toml"  # the same archive and alerts, no source to poll
    daemon_config.write_text(f'[settings]\ndatabase = "{world.database}"\n'
                             f'public_url = "https://archive.cabinet-test.fr"\n'
                             + CHANNELS.replace("{port}", str(world.sink.port)) + SUBSCRIPTIONS, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), SLACK_ENV: url}
    command = [sys.executable, "-m", "watcher", "--config", str(daemon_config), "--rules-only", "daemon"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert world.hook.arrived.wait(120), "the daemon did not send the waiting digest"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    (post,) = world.hook.posts
    assert post["channel"] == "#veille-sante" and "depuis le 1er août 2026" in post["text"]


def test_the_newsletter_arrives_once_to_each_subscriber(world: World, tmp_path: Path) -> None:
    with world.path.open("a", encoding="utf-8") as config:
        config.write('\n[newsletter]\ntitle = "Lettre santé & données"\nchannel = "mail"\n'
                     'subscribers = ["Alice Martin <alice@cabinet-test.fr>", "bruno@cabinet-test.fr"]\n')
    code, out = world.run("newsletter", "draft", "--week", "2026-W30")
    assert code == 0, out
    code, out = world.run("newsletter", "publish", "1")
    assert code == 0 and "sent 2" in out
    mails = world.mails()
    assert sorted(str(m["To"]) for m in mails) == ["Alice Martin <alice@cabinet-test.fr>", "bruno@cabinet-test.fr"]
    assert all(str(m["Subject"]).startswith("Lettre santé & données") for m in mails)
    titles = [r[0] for r in sqlite3.connect(world.database).execute(
        "select i.title from newsletter_issue_items e join items i on i.id = e.item_id where e.issue_id = 1 "
        "order by e.position limit 3")]
    assert titles and all(" ".join(t.split())[:60] in " ".join(text_part(m).split()) for t in titles for m in mails)
    assert all(m["List-Unsubscribe"] for m in mails)
    check_wording(world, mails)
    code, out = world.run("newsletter", "send", "1")
    assert code == 0 and len(world.mails()) == 2


def test_a_cron_fetch_opens_and_closes_an_incident_and_the_admin_is_told_of_each(
        world: World, replay_server: ReplayServer) -> None:
    feed = "https://www.cnil.fr/fr/rss.xml"
    replay_server.add(feed, status=503).add(feed, status=503)
    replay_server.add(feed, body=CNIL_FEED.read_bytes(), headers={"content-type": "application/rss+xml"})
    with world.path.open("a", encoding="utf-8") as config:
        config.write(f'\n[[source]]\nname = "cnil-test"\nkind = "feed"\nurl = "{replay_server.url_map(feed)}"\n'
                     'interval = "1h"\nlang = "fr"\n')
    text = world.path.read_text(encoding="utf-8").replace("[settings]\n", "[settings]\nfailure_alert_after = 2\n"
                                                          "retries = 0\nrespect_robots = false\n", 1)
    world.path.write_text(text, encoding="utf-8")
    code, out = world.run("fetch", "--source", "cnil-test")
    assert code == 1 and "incident opened: cnil-test" not in out
    code, out = world.run("fetch", "--source", "cnil-test")  # the second failure in a row: an incident
    assert code == 1 and "incident opened: cnil-test failing" in out
    world.run("deliver", now=None)

    def told() -> list[str]:
        return [str(m["X-Watcher-Incident"]) for m in world.to("exploitation@cabinet-test.fr")
                if str(m["X-Watcher-Incident"]).startswith("cnil-test")]

    assert told() == ["cnil-test failing open"]
    code, out = world.run("fetch", "--source", "cnil-test")  # it works again: the incident closes
    assert code == 0 and "incident closed: cnil-test failing" in out
    world.run("deliver", now=None)
    assert told() == ["cnil-test failing open", "cnil-test failing close"]
    world.run("deliver", now=None)
    assert len(told()) == 2
    check_wording(world, world.to("exploitation@cabinet-test.fr"))


def test_notify_test_arrives_by_mail_and_by_webhook(world: World) -> None:
    code, out = world.run("notify-test", "mail", "--to", "essai@cabinet-test.fr")
    assert code == 0 and "sent:" in out
    (mail,) = world.mails()
    assert str(mail["To"]).endswith("<essai@cabinet-test.fr>") or str(mail["To"]) == "essai@cabinet-test.fr"
    assert str(mail["Subject"]).startswith("[Veille]") and "Message de test de watcher" in text_part(mail)
    assert mail["List-Unsubscribe"]
    check_wording(world, [mail])
    code, out = world.run("notify-test", "team", "--to", "#essais")
    assert code == 0
    (post,) = world.hook.posts
    assert post["channel"] == "#essais" and "Message de test de watcher" in json.dumps(post, ensure_ascii=False)
