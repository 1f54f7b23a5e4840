"""Operations alerts: a person is told when a source breaks or goes quiet, once per incident, and when it heals.

Four kinds of incident, judged after each fetch from what the store recorded (``check_sources``):

    failing     ``failure_alert_after`` failed fetches in a row ([settings], default 3)
    selectors   an html listing whose item_selector matched nothing: the page layout changed
    empty       a fetch that worked but found no item, where the source's previous fetches found some
    silent      no new item for longer than the source's ``expect_new_within`` (e.g. '50h' for the JO)

At most one incident is open per (source, kind). Opening and closing each write one message into the delivery
ledger, addressed to the ``[admin]`` of ``sources.toml`` (a channel of ``[channel.NAME]`` and an address), in the
same transaction as the incident: it is sent, retried and recorded like any alert, exactly once. Without an
``[admin]`` table incidents are still recorded (``watcher status`` lists them) and logged.
"""

from __future__ import annotations

import html
import logging
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from watcher.config import Config, SourceConfig
from watcher.config.alerts import AlertsConfig
from watcher.legal import legal_dates
from watcher.legal.normalize import iso
from watcher.notify.base import Message
from watcher.notify.plan import delivery_key
from watcher.util.errors import ConfigError

log = logging.getLogger("watcher.ops")

ADMIN_KEYS: dict[str, str] = {
    "channel": "name of the [channel.NAME] that carries operations messages (required)",
    "person": "who reads them (default 'watcher admin')",
    "email": "address, for an email channel",
    "slack": "Slack target ('#channel' or a member id), for a slack channel",
    "lang": "language of the messages: fr (default) or en",
}
KINDS = ("failing", "selectors", "empty", "silent")
SUBSCRIPTION = "[admin]"  # the ledger's subscription column for operations messages
SELECTOR_MISS = "matched nothing"  # what the html kind says when its item_selector finds no node
_USUAL_FETCHES = 10  # the fetches that say what a source usually brings


@dataclass(frozen=True)
class AdminConfig:
    channel: str
    person: str = "watcher admin"
    email: str = ""
    slack: str = ""
    lang: str = "fr"


def load_admin(config: Config) -> AdminConfig | None:
    """The ``[admin]`` table of ``sources.toml``, checked against the declared channels; None if absent."""
    alerts = config.alerts
    table = config.raw.get("admin")
    if table is None:
        return None
    file = str(config.path)
    if not isinstance(table, Mapping):
        raise ConfigError("must be a table", file=file, table="[admin]")
    for key, value in table.items():
        if key not in ADMIN_KEYS:
            raise ConfigError(f"unknown key; accepts: {', '.join(ADMIN_KEYS)}", file=file, table="[admin]", key=key)
        if not isinstance(value, str):
            raise ConfigError("must be a string", file=file, table="[admin]", key=key)
    admin = AdminConfig(**table)
    if admin.channel not in alerts.channels:
        raise ConfigError(f"no channel named {admin.channel!r} (known: {', '.join(sorted(alerts.channels))})",
                          file=file, table="[admin]", key="channel")
    if admin.lang not in ("fr", "en"):
        raise ConfigError("must be fr or en", file=file, table="[admin]", key="lang")
    if alerts.channels[admin.channel].kind == "email" and "@" not in admin.email:
        raise ConfigError("an email channel needs an address", file=file, table="[admin]", key="email")
    return admin


@dataclass
class OpsReport:
    opened: list[tuple[str, str, str]] = field(default_factory=list)  # (source, kind, detail)
    closed: list[tuple[str, str]] = field(default_factory=list)  # (source, kind)


def findings(store: Any, config: Config, now: datetime) -> dict[tuple[str, str], str]:
    """What is wrong now with each enabled source that has been fetched: (source, kind) -> detail."""
    found: dict[tuple[str, str], str] = {}
    for source in config.sources:
        fetches = store.recent_fetches(source.name, _USUAL_FETCHES) if source.enabled else []
        if fetches:
            found.update(((source.name, kind), detail) for kind, detail in
                         judge(source, fetches, store.source_state(source.name), store.last_new_item(source.name),
                               config.settings.failure_alert_after, now))
    return found


def judge(source: SourceConfig, fetches: Sequence[Mapping[str, Any]], state: Mapping[str, Any],
          newest: str | None, failures_alert: int, now: datetime) -> list[tuple[str, str]]:
    """The incidents one source is in, from its fetches (newest first), state and newest item's first sight."""
    last, out = fetches[0], []
    failures = int(state.get("consecutive_failures") or 0)
    if failures >= failures_alert:
        out.append(("failing", f"{failures} failed fetches in a row; last error: {state.get('last_error') or ''}"))
    if last["outcome"] == "failed" and SELECTOR_MISS in (last["error"] or ""):
        out.append(("selectors", str(last["error"])))
    usual = [int(f["items_seen"] or 0) for f in fetches[1:] if f["outcome"] == "ok"]
    if last["outcome"] == "ok" and not last["items_seen"] and len(usual) >= 2 and statistics.median(usual) > 0:
        out.append(("empty", f"0 items, where its last {len(usual)} fetches found {statistics.median(usual):g} "
                             f"(median)"))
    if source.expect_new_within and newest:
        quiet = now - datetime.fromisoformat(newest.replace("Z", "+00:00"))
        if quiet > timedelta(seconds=source.expect_new_within):
            out.append(("silent", f"no new item since {newest} ({_span(quiet)}; expected at least every "
                                  f"{_span(timedelta(seconds=source.expect_new_within))})"))
    return out


def check_sources(store: Any, config: Config, now: datetime) -> OpsReport:
    """Open the incidents that started and close those that healed; each change owes the admin one message."""
    alerts = config.alerts
    admin, stamp, report = load_admin(config), iso(now) or "", OpsReport()
    found = findings(store, config, now)
    judged = {s.name for s in config.sources if s.enabled}
    opened = {(i["source"], i["kind"]): i for i in store.open_incidents()}
    for (source, kind), detail in found.items():
        if (source, kind) not in opened and store.open_incident(
                source, kind, now=stamp, detail=detail, delivery=_delivery(admin, alerts, source, kind, stamp, "open")):
            log.warning("incident: source %s %s: %s", source, kind, detail)
            report.opened.append((source, kind, detail))
    for (source, kind), incident in opened.items():
        if source in judged and (source, kind) not in found and store.close_incident(
                incident["id"], now=stamp, delivery=_delivery(admin, alerts, source, kind, stamp, "close")):
            log.info("incident closed: source %s %s", source, kind)
            report.closed.append((source, kind))
    return report


def _delivery(admin: AdminConfig | None, alerts: AlertsConfig, source: str, kind: str, stamp: str,
              phase: str) -> dict[str, Any] | None:
    if admin is None:
        return None
    recipient = admin.email.lower() if alerts.channels[admin.channel].kind == "email" else admin.slack or admin.person
    return {"key": delivery_key("ops", source, kind, stamp, phase, recipient, admin.channel), "kind": "ops",
            "subscription": SUBSCRIPTION, "recipient": recipient, "channel": admin.channel, "period": phase,
            "item_id": "", "state": "pending", "attempts": 0, "created_at": stamp, "updated_at": stamp}


# -- the message ---------------------------------------------------------------------------------------------------
_WORDS = {
    "fr": {"open": "Incident", "close": "Rétabli", "was": "était", "failing": "en échec",
           "selectors": "mise en page changée", "empty": "vide", "silent": "silencieuse", "source": "Source",
           "since": "Ouvert le", "closed": "Rétabli le", "what": "Détail", "at": "à",
           "todo": "Voir `watcher status` et `watcher sources` ; essayer `watcher fetch --source {name} --dry-run`.",
           "failing_detail": "{n} relevés en échec de suite ; dernière erreur : « {error} »",
           "empty_detail": "aucun élément, alors que ses {n} derniers relevés en trouvaient {median} (médiane)",
           "silent_detail": "aucun nouvel élément depuis le {day} ({quiet} ; attendu au moins toutes les {every})",
           "selectors_detail": "la page ne donne plus d’élément : « {error} »",
           "hours": "{n} h", "days": "{n} j"},
    "en": {"open": "Incident", "close": "Recovered", "was": "was", "failing": "failing",
           "selectors": "layout changed", "empty": "empty", "silent": "silent", "source": "Source",
           "since": "Opened on", "closed": "Recovered on", "what": "Detail", "at": "at",
           "todo": "See `watcher status` and `watcher sources`; try `watcher fetch --source {name} --dry-run`.",
           "failing_detail": "{n} failed fetches in a row; last error: “{error}”",
           "empty_detail": "no item, where its last {n} fetches found {median} (median)",
           "silent_detail": "no new item since {day} ({quiet}; expected at least every {every})",
           "selectors_detail": "the page gives no item any more: “{error}”",
           "hours": "{n} h", "days": "{n} days"},
}
_DETAILS = {  # the details ``judge`` writes (kept in the archive and shown by `watcher status`), read back
    "failing": re.compile(r"(?P<n>\d+) failed fetches in a row; last error: (?P<error>.*)", re.S),
    "empty": re.compile(r"0 items, where its last (?P<n>\d+) fetches found (?P<median>[\d.]+) \(median\)"),
    "silent": re.compile(r"no new item since (?P<since>\S+) \((?P<quiet>[\d.]+ [dh]); expected at least every "
                         r"(?P<every>[\d.]+ [dh])\)"),
}


def spoken_detail(kind: str, detail: str, lang: str, tz: ZoneInfo) -> str:
    """An incident's detail in the admin's language, its times as days in the archive's time zone; a source's own
    error is quoted as it is."""
    words = _WORDS[lang]
    found = _DETAILS[kind].fullmatch(detail) if kind in _DETAILS else None
    if kind == "selectors" or found is None:
        return words["selectors_detail"].format(error=detail) if kind == "selectors" else detail
    values = found.groupdict()
    if kind == "silent":
        values["day"] = _when(values["since"], lang, tz)
        values["quiet"], values["every"] = _spoken_span(values["quiet"], lang), _spoken_span(values["every"], lang)
    if lang == "fr" and "median" in values:
        values["median"] = values["median"].replace(".", ",")
    return words[f"{kind}_detail"].format(**values)


def _spoken_span(span: str, lang: str) -> str:
    """'109.7 d' -> '109,7 j' / '109.7 days'; '50 h' -> '50 h'."""
    number, unit = span.split()
    number = number.replace(".", ",") if lang == "fr" else number
    return _WORDS[lang]["days" if unit == "d" else "hours"].format(n=number)


def _when(stamp: str, lang: str, tz: ZoneInfo) -> str:
    """'2026-08-20T08:00:00Z' -> '20 août 2026 à 10 h 00' (French) or '20 August 2026 at 10:00', in ``tz``."""
    try:
        local = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(tz)
    except ValueError:
        return str(stamp)
    clock = f"{local:%H} h {local:%M}" if lang == "fr" else f"{local:%H:%M}"
    return f"{legal_dates.spoken(local.date(), lang)} {_WORDS[lang]['at']} {clock}"


def ops_message(row: Mapping[str, Any], incident: Mapping[str, Any], admin: AdminConfig | None,
                labels: Mapping[str, str], now: datetime, timezone: str = "Europe/Paris") -> Message:
    """The admin's message for one incident change (``row['period']`` is 'open' or 'close'), in the admin's
    language, times in the archive's time zone."""
    lang, tz = admin.lang if admin else "fr", ZoneInfo(timezone)
    words = _WORDS[lang]
    name, kind, phase = incident["source"], incident["kind"], row["period"]
    what = words[kind] if phase == "open" else f"({words['was']} {words[kind]})"
    title = f"[watcher] {words[phase]}{' :' if lang == 'fr' else ':'} {words['source']} {labels.get(name, name)} " \
            f"({name}) {what}"
    colon = " :" if lang == "fr" else ":"
    lines = [f"{words['since']} {_when(incident['opened_at'], lang, tz)}"]
    if phase == "close":
        lines.append(f"{words['closed']} {_when(incident['closed_at'], lang, tz)}")
    lines += [f"{words['what']}{colon} {spoken_detail(kind, str(incident['detail'] or ''), lang, tz)}",
              words["todo"].format(name=name)]
    text = "\n".join(lines)
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Message(key=row["key"], subject=title, text=text,
                   html=f"<p><strong>{html.escape(title)}</strong></p><pre>{html.escape(text)}</pre>",
                   slack={"text": title, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": escaped}}]},
                   person=admin.person if admin else "admin", email=admin.email if admin else "",
                   slack_target=admin.slack if admin else "", date=now,
                   headers={"X-Watcher-Incident": f"{name} {kind} {phase}"})


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} d" if hours >= 96 else f"{hours:.0f} h"
