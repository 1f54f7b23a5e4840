"""Subscriptions and channels config: a valid setup loads; every mistake names the file, the table and the key."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path

import pytest
from test_notify_support import email_channel, subscription, write_config

from store import Store
from watcher.cli.alerts import COMMANDS
from watcher.config import load_config
from watcher.config.alerts import ALERTS_KEYS, SUBSCRIPTION_KEYS, parse_subscription
from watcher.notify import CHANNELS
from watcher.notify.service import load_alerts
from watcher.util.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _alerts(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    return load_alerts(load_config(write_config(tmp_path, body)))


def test_sources_toml_and_an_included_subscriptions_file_load_together(tmp_path: Path) -> None:
    (tmp_path / "subscriptions.toml").write_text(
        '[channel.team]\nkind = "slack"\nwebhook_env = "WATCHER_SLACK_WEBHOOK"\n'
        + subscription("bob", channel="team", themes=["personal-data"], cadence="weekly", day="vendredi", at="17:30",
                       natures=["decret"], sources=["jorf"], languages=["fr"], min_score=0.7, lang="en"),
        encoding="utf-8")
    alerts = _alerts(tmp_path, '[alerts]\nsubscriptions = "subscriptions.toml"\nmax_attempts = 7\n'
                     'stale_after = "30m"\n' + email_channel(2525) + subscription("alice"))
    assert [s.name for s in alerts.subscriptions] == ["alice", "bob"] and set(alerts.channels) == {"mail", "team"}
    bob = alerts.subscription("bob")
    assert (bob.cadence.kind, bob.cadence.day, bob.cadence.at) == ("weekly", 4, time(17, 30))
    assert bob.natures == {"decret"} and bob.min_score == 0.7 and bob.lang == "en"
    assert bob.accepts(score=0.8, source="jorf", nature="decret", lang="fr")
    assert not bob.accepts(score=0.8, source="jorf", nature="arrete", lang="fr")
    assert not bob.accepts(score=0.8, source="cnil", nature="decret", lang="fr")
    assert not bob.accepts(score=0.6, source="jorf", nature="decret", lang="fr")
    assert alerts.settings.max_attempts == 7 and alerts.settings.stale_after == 1800
    assert alerts.public_url == "https://archive.example.org" and alerts.channels["team"].secret_vars == {
        "webhook": "WATCHER_SLACK_WEBHOOK"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (subscription("a", colour="red"), "[[subscription]] #1 (a): colour: unknown key"),
        (subscription("a", channel="nope"), "subscription 'a': channel: no [channel.nope] declared"),
        (subscription("a", themes=[]), "(a): themes: required"),
        (subscription("a", themes=["rgpd"]), "subscription 'a': themes: unknown theme(s) rgpd; known: ai, "
                                             "dmuu-reprocessing, health-data, health-products, personal-data"),
        (subscription("a", cadence="hourly"), "(a): cadence: must be one of instant, daily, weekly"),
        (subscription("a", cadence="daily", at="8h"), "(a): at: must be a time 'HH:MM'"),
        (subscription("a", cadence="weekly", day="someday"), "(a): day: must be a day of the week"),
        (subscription("a", at="08:00"), "(a): at: only for a daily or weekly cadence"),
        (subscription("a", min_score=2), "(a): min_score: must be a number between 0 and 1"),
        (subscription("a", email="not-an-address"), "(a): email: not an e-mail address"),
        (subscription("a", lang="de"), "(a): lang: must be 'fr' or 'en'"),
        (subscription("a", email=""), "subscription 'a': email: channel 'mail' sends e-mail"),
        (subscription("a") + subscription("a"), "subscription 'a': name: subscription name used twice"),
        ('[channel.x]\nkind = "pigeon"\n', "[channel.x]: kind: unknown or missing kind"),
        ('[channel.x]\nkind = "email"\nhost = "h"\nfrom = "a@b.fr"\npassword = "hunter2"\n',
         "[channel.x]: password: secrets are not written in config files"),
        ('[channel.x]\nkind = "slack"\n', "[channel.x]: webhook_env: required by kind slack"),
        ('[channel.x]\nkind = "slack"\nwebhook_env = "not a name"\n', "webhook_env: must be the name of"),
        ('[channel.x]\nkind = "email"\nfrom = "a@b.fr"\n', "[channel.x]: host: required by kind email"),
        ('[channel.x]\nkind = "email"\nhost = "h"\nfrom = "a@b.fr"\nsecurity = "tls13"\n', "security: must be one"),
        ('[channel.x]\nkind = "email"\nhost = "h"\nfrom = "a@b.fr"\ncolour = 1\n', "colour: unknown key for kind"),
        ('[alerts]\nretries = 3\n', "[alerts]: retries: unknown key"),
        ('[alerts]\nretry_after = "soon"\n', "[alerts]: retry_after: interval must look like"),
        ('[alerts]\nsubscriptions = "missing.toml"\n', "[alerts]: subscriptions: file not found"),
    ],
)
def test_mistakes_name_file_table_and_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _alerts(tmp_path, email_channel(2525) + body)
    assert message in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "sources.toml")) or "file not found" in message


def test_an_included_file_holds_only_channels_and_subscriptions(tmp_path: Path) -> None:
    (tmp_path / "subs.toml").write_text('[settings]\ntimeout = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"subs.toml: \[settings\]: only \[channel.NAME\]"):
        _alerts(tmp_path, '[alerts]\nsubscriptions = "subs.toml"\n')


def test_secrets_are_read_from_the_named_variable_only_when_a_channel_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_TEST_SMTP_PASSWORD", raising=False)
    alerts = _alerts(tmp_path, email_channel(2525) + 'username = "veille"\npassword_env = "WATCHER_TEST_SMTP_PASSWORD"\n'
                     + subscription("a"))
    with pytest.raises(ConfigError, match=r"\[channel.mail\]: password_env: environment variable "
                                          r"WATCHER_TEST_SMTP_PASSWORD is not set"):
        alerts.channel("mail").secrets()
    monkeypatch.setenv("WATCHER_TEST_SMTP_PASSWORD", "s3cret")
    assert alerts.channel("mail").secrets() == {"password": "s3cret"}


def test_database_subscriptions_are_validated_like_the_files(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, email_channel(2525) + subscription("a")))
    store = Store(":memory:")
    store.save_subscription("b", {"name": "b", "person": "B", "email": "b@x.fr", "themes": ["personal-data"],
                                  "channel": "mail", "cadence": "daily"}, now="2026-06-16T00:00:00Z")
    alerts = load_alerts(config, store.stored_subscriptions())
    assert alerts.subscription("b").origin == "database" and alerts.subscription("b").cadence.kind == "daily"
    store.save_subscription("a", {"name": "a", "person": "A", "email": "a@x.fr", "themes": ["personal-data"],
                                  "channel": "mail"}, now="2026-06-16T00:00:00Z")
    with pytest.raises(ConfigError, match="subscription name used twice"):
        load_alerts(config, store.stored_subscriptions())
    with pytest.raises(ConfigError, match="command line: subscription 'c': themes"):
        parse_subscription({"name": "c", "person": "C", "channel": "mail", "themes": "  "}, file="command line",
                           where="subscription 'c'")


def test_the_example_subscriptions_file_is_valid(tmp_path: Path) -> None:
    example = ROOT / "watcher" / "subscriptions.example.toml"
    (tmp_path / "subscriptions.toml").write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    alerts = _alerts(tmp_path, '[alerts]\nsubscriptions = "subscriptions.toml"\n')
    assert {s.cadence.kind for s in alerts.subscriptions} == {"instant", "daily", "weekly"}
    assert {c.kind for c in alerts.channels.values()} == set(CHANNELS)


def test_every_key_channel_setting_and_command_is_documented() -> None:
    doc = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    keys = list(SUBSCRIPTION_KEYS) + list(ALERTS_KEYS)
    for kind in CHANNELS.values():
        keys += list(kind.required) + list(kind.optional) + [f"{s}_env" for s in kind.secrets]
    missing = [k for k in keys if f"`{k}`" not in doc]
    missing += [c.name for c in COMMANDS if f"watcher {c.name}" not in doc]
    missing += [f"--{p.name.replace('_', '-')}" for c in COMMANDS for p in c.params
                if isinstance(p.name, str) and p.param_type_name == "option" and p.opts[0] not in doc]
    assert missing == []


def test_natures_are_read_from_the_vocabulary_whatever_the_spelling(tmp_path: Path) -> None:
    alerts = _alerts(tmp_path, email_channel(2525) + subscription(
        "carla", natures=["DELIBERATION", "Décret", "arrete", "information de sécurité"]))
    carla = alerts.subscription("carla")
    assert carla.natures == {"deliberation", "decret", "arrete", "information-securite"}
    # a parent takes its sub-kinds: the CNIL recommandation is a délibération
    assert carla.accepts(score=0.9, source="cnil-deliberations", nature="deliberation-recommandation", lang="fr")
    assert not carla.accepts(score=0.9, source="cnil", nature="actualite", lang="fr")


def test_an_unknown_nature_is_an_error_naming_the_file_and_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _alerts(tmp_path, email_channel(2525) + subscription("dan", natures=["decret", "DECRETS-LOIS"]))
    message = str(caught.value)
    assert "sources.toml" in message and "natures" in message and "'DECRETS-LOIS'" in message
    assert "deliberation-sanction" in message  # what it could have said


def test_the_example_subscription_gets_the_cnil_deliberation() -> None:
    """The example file's délibération filter matches the real CNIL recommandation (raw nature
    'Recommandation/Lignes directrices'), which an upper-case DELIBERATION filter used to miss."""
    from watcher.records import item_to_row
    from watcher.sources import dila_cnil

    fixture = Path(__file__).parent / "fixtures" / "cnil"
    row = item_to_row(dila_cnil.parse_text(
        (fixture / "dila_CNILTEXT000054047151_deliberation_2026-047_recommandation_credit.xml").read_bytes()))
    example = tomllib.loads((Path(__file__).parents[1] / "watcher" / "subscriptions.example.toml").read_text(encoding="utf-8"))
    table = next(t for t in example["subscription"] if "natures" in t)
    sub = parse_subscription(table, file="subscriptions.example.toml", where="example")
    assert row["nature"] == "deliberation-recommandation"
    assert sub.accepts(score=0.9, source="cnil-deliberations", nature=row["nature"], lang="fr")
