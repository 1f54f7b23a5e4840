"""Subscriptions and channels, read once into frozen objects and validated with errors naming file, table and key.

Where they live: ``sources.toml`` may hold an ``[alerts]`` table, ``[channel.NAME]`` tables and
``[[subscription]]`` tables; ``[alerts] subscriptions = "subscriptions.toml"`` names a second file (relative to
``sources.toml``) holding more ``[channel.NAME]`` and ``[[subscription]]`` tables. Subscriptions added with
``watcher subscribe`` are stored in the database and validated by the same code. Names are unique across all three.

They are read with the rest of the config (``Config.alerts``); ``AlertsConfig.with_stored`` adds the stored ones.
What only the registries know (each channel kind's keys, the taxonomy's themes) is checked by ``check_channel``
and ``check_themes``, called at the composition root with the registries as data.

Secrets are never written in a file: a channel names the environment variable that holds each one
(``password_env = "WATCHER_SMTP_PASSWORD"``); it is read here, through ``secret()``, when the channel is built.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any, Protocol

from watcher.config.environment import secret
from watcher.config.sources import KindSpec, parse_interval
from watcher.config.toml import named, read_toml
from watcher.legal import natures as natures_vocabulary
from watcher.legal.acts import parse_act
from watcher.util.errors import ConfigError

# Each table is declared once as (key, help): it drives validation and docs/alerts.md (checked by a test).
ALERTS_KEYS: dict[str, str] = {
    "subscriptions": "path of a TOML file with more [channel.NAME] and [[subscription]] tables",
    "max_attempts": "attempts before a failing delivery is held for a person (default 5)",
    "retry_after": "delay before the first retry, doubled at each attempt: '5m' (default)",
    "max_retry_delay": "longest delay between two attempts (default '6h')",
    "stale_after": "a delivery left 'sending' this long was interrupted by a crash (default '15m')",
    "breaker_after": "connection failures in a row after which a channel's other messages wait for the next run "
                     "(default 2; a refused login stops the channel at once)",
    "send_deadline": "longest time one message may take, connection and login included (default '2m')",
    "baseline_horizon": "items older than this when first matched are a baseline, not news: no alert, sent only "
                        "on request with `deliver --since DATE` (default '3d')",
}
SUBSCRIPTION_KEYS: dict[str, str] = {
    "name": "unique name of the subscription (required)",
    "person": "name of the person told (required)",
    "email": "e-mail address (required for an email channel)",
    "slack": "Slack target: '#channel' or a member id, sent as the webhook's channel (optional)",
    "themes": "list of themes to hear about (required, at least one, unless `acts` is given)",
    "acts": "follow acts, whatever their theme: whatever cites, applies, amends or rectifies them, e.g. "
            "['décret 2025-895', '2024/1689', 'JORFTEXT000042665307'] (optional)",
    "updates": "true: also an alert when an item already sent changes (a rectificatif, a re-delivered JO text, "
               "an edited post), with what changed (default false)",
    "sources": "only items of these sources (default: all)",
    "natures": "only these kinds of act (docs/natures.md), e.g. ['decret', 'arrete', 'deliberation'] (default: all)",
    "languages": "only items in these languages, e.g. ['fr'] (default: all)",
    "min_score": "lowest theme confidence that alerts, 0 to 1 (default 0.5)",
    "cadence": "instant, daily or weekly (default instant)",
    "at": "time of the daily or weekly digest, 'HH:MM' in the settings timezone (default '08:00')",
    "day": "day of the weekly digest: monday..sunday or lundi..dimanche (default monday)",
    "channel": "name of a [channel.NAME] table (required)",
    "lang": "language of the messages: fr or en (default fr)",
    "introduction": "a few lines shown at the top of each message, e.g. who the watch is for (optional)",
}
CHANNEL_COMMON_KEYS: dict[str, str] = {"kind": "email, slack or apprise"}
CADENCES = ("instant", "daily", "weekly")
_DAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
         "lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5, "dimanche": 6}
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Cadence:
    kind: str = "instant"  # instant | daily | weekly
    at: time = time(8, 0)
    day: int = 0  # weekday of a weekly digest, Monday = 0


@dataclass(frozen=True)
class Subscription:
    name: str
    person: str
    themes: frozenset[str]
    channel: str
    email: str = ""
    slack: str = ""
    sources: frozenset[str] = frozenset()  # empty = every source
    natures: frozenset[str] = frozenset()  # codes of watcher.legal.natures; empty = every kind of act
    languages: frozenset[str] = frozenset()
    min_score: float = 0.5
    cadence: Cadence = field(default_factory=Cadence)
    lang: str = "fr"
    introduction: str = ""
    origin: str = "config"  # config | database
    file: str = field(default="", compare=False)
    acts: tuple[str, ...] = ()  # the followed acts as written (``acts = [...]``)
    act_keys: frozenset[tuple[str, str]] = frozenset()  # and as (scheme, value) pairs
    updates: bool = False  # alert again when an item already sent changes

    def accepts(self, *, score: float, source: str, nature: str, lang: str) -> bool:
        """The filters besides the theme (which the planner indexes)."""
        return score >= self.min_score and (not self.sources or source in self.sources) and (
            not self.natures or natures_vocabulary.accepts(self.natures, nature or "")) and (
            not self.languages or (lang or "") in self.languages)


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: str
    options: Mapping[str, Any]  # the kind's own keys, validated against the kind's declared settings
    secret_vars: Mapping[str, str]  # secret setting -> name of the environment variable holding it
    file: str = ""
    table_keys: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # as written

    @property
    def table(self) -> str:
        return f"[channel.{self.name}]"

    def secrets(self) -> dict[str, str]:
        """Read the secrets from the environment (only now: listing subscriptions needs none)."""
        return {key: secret(var, file=self.file, table=self.table, key=f"{key}_env")
                for key, var in self.secret_vars.items()}


@dataclass(frozen=True)
class AlertsSettings:
    max_attempts: int = 5
    retry_after: int = 300
    max_retry_delay: int = 6 * 3600
    stale_after: int = 900
    breaker_after: int = 2
    send_deadline: int = 120
    baseline_horizon: int = 3 * 86400


@dataclass(frozen=True)
class AlertsConfig:
    channels: Mapping[str, ChannelConfig]
    subscriptions: tuple[Subscription, ...]
    settings: AlertsSettings = field(default_factory=AlertsSettings)
    public_url: str = ""
    timezone: str = "Europe/Paris"

    def subscription(self, name: str) -> Subscription:
        return named(self.subscriptions, name, what="subscription")

    def channel(self, name: str) -> ChannelConfig:
        if name not in self.channels:
            raise ConfigError(f"no channel named {name!r} (known: {', '.join(sorted(self.channels))})")
        return self.channels[name]

    def with_stored(self, stored: Sequence[Mapping[str, Any]]) -> AlertsConfig:
        """These alerts plus the subscriptions ``stored`` in the database (rows of ``name`` and ``spec``)."""
        subs = [s for s in self.subscriptions if s.origin != "database"]
        subs.extend(parse_subscription(s["spec"], file="database", where=f"subscription {s['name']!r}",
                                       origin="database") for s in stored)
        _check_links(subs, self.channels)
        return replace(self, subscriptions=tuple(subs))


def parse_alerts(raw: Mapping[str, Any], path: Path, public_url: str = "", timezone: str = "Europe/Paris") -> (
        AlertsConfig):
    """The alerts of a parsed ``sources.toml`` (``raw``, read from ``path``) and of the file it names."""
    file = str(path)
    alerts = _table(raw.get("alerts", {}), file, "[alerts]")
    _unknown(alerts, ALERTS_KEYS, file, "[alerts]")
    tables = [(file, raw)]
    if "subscriptions" in alerts:
        tables.append(_read_included(path, alerts["subscriptions"]))
    channels: dict[str, ChannelConfig] = {}
    subs: list[Subscription] = []
    for source, tables_of in tables:
        for name, table in _table(tables_of.get("channel", {}), source, "[channel]").items():
            if name in channels:
                raise ConfigError("channel declared twice", file=source, table=f"[channel.{name}]")
            channels[name] = parse_channel(name, table, file=source)
        subs.extend(parse_subscription(t, file=source, where=_where(t, n))
                    for n, t in enumerate(_list(tables_of.get("subscription", []), source), 1))
    _check_links(subs, channels)
    return AlertsConfig(channels=channels, subscriptions=tuple(subs), settings=_settings(alerts, file),
                        public_url=public_url.rstrip("/"), timezone=timezone)


def _read_included(base: Path, name: Any) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(name, str) or not name:
        raise ConfigError("must be a file name", file=str(base), table="[alerts]", key="subscriptions")
    path = Path(name) if Path(name).is_absolute() else base.parent / name
    if not path.is_file():
        raise ConfigError(f"file not found: {path}", file=str(base), table="[alerts]", key="subscriptions")
    raw = read_toml(path)
    extra = set(raw) - {"channel", "subscription"}
    if extra:
        raise ConfigError("only [channel.NAME] and [[subscription]] tables belong here", file=str(path),
                          table=f"[{sorted(extra)[0]}]")
    return str(path), raw


def _where(table: Any, index: int) -> str:
    name = table.get("name") if isinstance(table, Mapping) else None
    return f"[[subscription]] #{index}" + (f" ({name})" if isinstance(name, str) else "")


def _table(value: Any, file: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError("must be a table", file=file, table=where)
    return value


def _list(value: Any, file: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        raise ConfigError("must be an array of tables ([[subscription]])", file=file, table="[[subscription]]")
    return value


def _unknown(table: Mapping[str, Any], known: Mapping[str, str], file: str, where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key; known: {', '.join(known)}", file=file, table=where, key=key)


def _settings(table: Mapping[str, Any], file: str) -> AlertsSettings:
    values: dict[str, int] = {}
    for key in ("retry_after", "max_retry_delay", "stale_after", "send_deadline", "baseline_horizon"):
        if key in table:
            try:
                values[key] = parse_interval(table[key])
            except ValueError as exc:
                raise ConfigError(str(exc), file=file, table="[alerts]", key=key) from None
    for key in ("max_attempts", "breaker_after"):
        if key in table:
            count = table[key]
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ConfigError("must be a whole number >= 1", file=file, table="[alerts]", key=key)
            values[key] = count
    return AlertsSettings(**values)


class ChannelKindSpec(KindSpec, Protocol):
    """What config checks of a kind of channel (``watcher.notify.CHANNELS`` values fit it): also its secrets."""

    @property
    def secrets(self) -> Mapping[str, str]: ...
    @property
    def required_secrets(self) -> tuple[str, ...]: ...

    def check_options(self, options: Mapping[str, Any]) -> tuple[str, str] | None: ...


def parse_channel(name: str, table: Any, *, file: str) -> ChannelConfig:
    """One ``[channel.NAME]`` table, as written (its kind's keys are checked by ``check_channel``)."""
    table = _table(table, file, f"[channel.{name}]")
    kind = table.get("kind", "")
    options = {k: v for k, v in table.items() if k != "kind" and not k.endswith("_env")}
    secret_vars = {k[: -len("_env")]: v for k, v in table.items() if k.endswith("_env")}
    return ChannelConfig(name=name, kind=kind if isinstance(kind, str) else "", options=options,
                         secret_vars=secret_vars, file=file, table_keys=dict(table))


def check_channel(channel: ChannelConfig, kinds: Mapping[str, ChannelKindSpec]) -> ChannelConfig:
    """The channel checked against its kind's declared keys and secrets, as that kind reads it."""
    name, file, table = channel.name, channel.file, channel.table_keys
    where = f"[channel.{name}]"
    kind = kinds.get(table.get("kind", ""))
    if kind is None:
        raise ConfigError(f"unknown or missing kind; known kinds: {', '.join(sorted(kinds))}", file=file,
                          table=where, key="kind")
    allowed = set(kind.required) | set(kind.optional) | {f"{s}_env" for s in kind.secrets} | {"kind"}
    for key in table:
        if key in kind.secrets:
            raise ConfigError(f"secrets are not written in config files: set {key}_env = \"VARIABLE\" and put "
                              f"the value in that environment variable", file=file, table=where, key=key)
        if key not in allowed:
            raise ConfigError(f"unknown key for kind {kind.kind}; accepts: {', '.join(sorted(allowed))}",
                              file=file, table=where, key=key)
    for key in kind.required:
        if key not in table:
            raise ConfigError(f"required by kind {kind.kind}", file=file, table=where, key=key)
    for key in kind.required_secrets:
        if f"{key}_env" not in table:
            raise ConfigError(f"required by kind {kind.kind}: the name of the environment variable holding it",
                              file=file, table=where, key=f"{key}_env")
    secret_vars = {k[: -len("_env")]: v for k, v in table.items() if k.endswith("_env") and k[:-4] in kind.secrets}
    for key, var in secret_vars.items():
        if not isinstance(var, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            raise ConfigError("must be the name of an environment variable", file=file, table=where,
                              key=f"{key}_env")
    options = {k: v for k, v in table.items() if k != "kind" and not k.endswith("_env")}
    problem = kind.check_options(options)
    if problem:
        raise ConfigError(problem[1], file=file, table=where, key=problem[0])
    return ChannelConfig(name=name, kind=kind.kind, options=options, secret_vars=secret_vars, file=file,
                         table_keys=table)


def parse_subscription(table: Any, *, file: str, where: str, origin: str = "config") -> Subscription:
    """One ``[[subscription]]`` table (or a stored spec) into a ``Subscription``; every error names the key."""
    table = _table(table, file, where)
    _unknown(table, SUBSCRIPTION_KEYS, file, where)

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, file=file, table=where, key=key)

    for key in ("name", "person", "channel"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise fail(key, "missing or empty (a string is required)")
    email = _string(table, "email", fail)
    if email and not _EMAIL.match(email):
        raise fail("email", f"not an e-mail address: {email!r}")
    themes = _strings(table, "themes", fail)
    written, act_keys = _acts(table, fail)
    if not themes and not written:
        raise fail("themes", "required: a list of at least one theme (or `acts`, the acts to follow)")
    updates = table.get("updates", False)
    if not isinstance(updates, bool):
        raise fail("updates", f"must be true or false, not {updates!r}")
    lang = table.get("lang", "fr")
    if lang not in ("fr", "en"):
        raise fail("lang", f"must be 'fr' or 'en', not {lang!r}")
    return Subscription(
        name=table["name"].strip(), person=table["person"].strip(), themes=themes, channel=table["channel"],
        email=email, slack=_string(table, "slack", fail), sources=_strings(table, "sources", fail),
        natures=_natures(table, fail),
        languages=_strings(table, "languages", fail), min_score=_score(table, fail),
        cadence=_cadence(table, fail), lang=lang, introduction=_string(table, "introduction", fail), origin=origin,
        file=file, acts=written, act_keys=act_keys, updates=updates)


def _string(table: Mapping[str, Any], key: str, fail: Any) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise fail(key, "must be a string")
    return value.strip()


def _strings(table: Mapping[str, Any], key: str, fail: Any) -> frozenset[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(key, "must be a list of non-empty strings")
    return frozenset(v.strip() for v in value)


def _natures(table: Mapping[str, Any], fail: Any) -> frozenset[str]:
    """Kinds of act as vocabulary codes; a value the vocabulary does not know would silently never match."""
    codes, unknown = set(), []
    for value in sorted(_strings(table, "natures", fail)):
        code = natures_vocabulary.resolve(value)
        codes.add(code) if code else unknown.append(value)
    if unknown:
        known = ", ".join(n.code for n in natures_vocabulary.VOCABULARY)
        raise fail("natures", f"unknown kind(s) of act {', '.join(map(repr, unknown))}; known: {known} "
                              "(see docs/natures.md)")
    return frozenset(codes)


def _acts(table: Mapping[str, Any], fail: Any) -> tuple[tuple[str, ...], frozenset[tuple[str, str]]]:
    """The followed acts as written and as (scheme, value) pairs; an act that cannot be read would silently
    never match: it is an error."""
    value = table.get("acts", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail("acts", "must be a list of acts, e.g. ['décret 2025-895', '2024/1689', 'JORFTEXT000042665307']")
    keys: set[tuple[str, str]] = set()
    for written in value:
        pairs = parse_act(written)
        if not pairs:
            raise fail("acts", f"cannot read {written!r} as an act; write its kind and number ('décret "
                               "2025-895', 'loi 78-17'), an EU number ('2016/679'), a NOR, a JORFTEXT or CNILTEXT id, "
                               "a CELEX, or a dated act with its date ('arrêté du 4 février 2026')")
        keys.update(pairs)
    return tuple(v.strip() for v in value), frozenset(keys)


def _score(table: Mapping[str, Any], fail: Any) -> float:
    value = table.get("min_score", 0.5)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise fail("min_score", f"must be a number between 0 and 1, not {value!r}")
    return float(value)


def _cadence(table: Mapping[str, Any], fail: Any) -> Cadence:
    kind = table.get("cadence", "instant")
    if kind not in CADENCES:
        raise fail("cadence", f"must be one of {', '.join(CADENCES)}, not {kind!r}")
    if kind == "instant":
        for key in ("at", "day"):
            if key in table:
                raise fail(key, "only for a daily or weekly cadence")
        return Cadence()
    match = _TIME.match(str(table.get("at", "08:00")))
    if not match:
        raise fail("at", f"must be a time 'HH:MM', not {table.get('at')!r}")
    day = str(table.get("day", "monday")).lower()
    if kind == "daily" and "day" in table:
        raise fail("day", "only for a weekly cadence")
    if day not in _DAYS:
        raise fail("day", f"must be a day of the week (monday..sunday), not {table.get('day')!r}")
    return Cadence(kind=kind, at=time(int(match.group(1)), int(match.group(2))), day=_DAYS[day])


def _check_links(subs: Sequence[Subscription], channels: Mapping[str, ChannelConfig]) -> None:
    seen: set[str] = set()
    for sub in subs:
        where = f"subscription {sub.name!r}"
        if sub.name in seen:
            raise ConfigError("subscription name used twice", file=sub.file, table=where, key="name")
        seen.add(sub.name)
        channel = channels.get(sub.channel)
        if channel is None:
            raise ConfigError(f"no [channel.{sub.channel}] declared (known: {', '.join(sorted(channels))})",
                              file=sub.file, table=where, key="channel")
        if channel.kind == "email" and not sub.email:
            raise ConfigError(f"channel {sub.channel!r} sends e-mail: an email address is required",
                              file=sub.file, table=where, key="email")


def check_themes(subs: Sequence[Subscription], themes: Collection[str]) -> None:
    """A theme that is not in the taxonomy (``themes``) would silently never match: it is an error."""
    known = set(themes)
    for sub in subs:
        unknown = sorted(sub.themes - known)
        if unknown:
            raise ConfigError(f"unknown theme(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                              file=sub.file, table=f"subscription {sub.name!r}", key="themes")


def subscription_spec(sub: Subscription) -> dict[str, Any]:
    """The table form of a subscription (what ``watcher subscribe`` stores and ``subscriptions`` prints)."""
    spec: dict[str, Any] = {"name": sub.name, "person": sub.person, "themes": sorted(sub.themes),
                            "channel": sub.channel, "cadence": sub.cadence.kind, "lang": sub.lang,
                            "min_score": sub.min_score}
    for key in ("email", "slack", "introduction"):
        if getattr(sub, key):
            spec[key] = getattr(sub, key)
    for key in ("sources", "natures", "languages"):
        if getattr(sub, key):
            spec[key] = sorted(getattr(sub, key))
    if sub.acts:
        spec["acts"] = list(sub.acts)
    if sub.updates:
        spec["updates"] = True
    if sub.cadence.kind != "instant":
        spec["at"] = sub.cadence.at.strftime("%H:%M")
    if sub.cadence.kind == "weekly":
        spec["day"] = [d for d, n in _DAYS.items() if n == sub.cadence.day][0]
    return spec
