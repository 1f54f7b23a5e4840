"""Configuration is read once, here, into frozen typed objects; only ``environment`` reads the environment.

``load_config(path)`` reads ``sources.toml`` whole: a ``[settings]`` table (see ``settings.SETTINGS``),
``[[source]]`` tables, and the alerts (``[alerts]``, ``[channel.NAME]``, ``[[subscription]]``, and the file
``[alerts] subscriptions`` names) into ``Config.alerts``. Every error names the file, the table and the key.

This package imports nothing above it. What only the registries know (the kinds of source, the kinds of channel,
the themes of the taxonomy) is checked by ``check_config``, which the composition root (``watcher.app``) calls
with the registries: they are passed in as data, never imported here.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from watcher.config.alerts import AlertsConfig, ChannelKindSpec, check_channel, check_themes, parse_alerts
from watcher.config.environment import env, secret
from watcher.config.settings import CHOICES, DEFAULTS, SETTINGS, Settings
from watcher.config.sources import (
    COMMON_KEYS,
    KindSpec,
    SourceConfig,
    check_source_kind,
    parse_interval,
    parse_windows,
)
from watcher.config.toml import named, read_toml
from watcher.util.errors import ConfigError

__all__ = ["Config", "Settings", "SourceConfig", "load_config", "check_config", "SETTINGS", "COMMON_KEYS",
           "secret", "env", "with_env_overrides"]

DEFAULT_CONFIG = "sources.toml"


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    sources: tuple[SourceConfig, ...]
    raw: Mapping[str, Any]  # the whole parsed TOML, for sections no typed object reads yet
    alerts: AlertsConfig = AlertsConfig(channels={}, subscriptions=())

    def source(self, name: str) -> SourceConfig:
        return named(self.sources, name, what="source", file=str(self.path))

    @property
    def database(self) -> Path:
        db = Path(os.path.expanduser(self.settings.database))
        return db if db.is_absolute() else self.path.parent / db


def load_config(path: str | Path | None = None) -> Config:
    """Read and check the whole file (the registries' part is ``check_config``'s)."""
    path = Path(path or env("WATCHER_CONFIG") or DEFAULT_CONFIG)
    raw = read_toml(path)
    settings = with_env_overrides(_settings(raw.get("settings", {}), str(path)), str(path))
    sources = tuple(_source(t, n, str(path)) for n, t in enumerate(raw.get("source", []), 1))
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate source name(s): {', '.join(dupes)}", file=str(path), table="[[source]]")
    return Config(path=path, settings=settings, sources=sources, raw=raw,
                  alerts=parse_alerts(raw, path, settings.public_url, settings.timezone))


def check_config(config: Config, *, source_kinds: Mapping[str, KindSpec],
                 channel_kinds: Mapping[str, ChannelKindSpec], themes: Collection[str]) -> Config:
    """``config`` checked against the registries (given by the composition root): each source's kind and its
    keys, each channel's kind and its keys, each subscription's themes. Returns the config with its channels as
    their kind reads them."""
    for source in config.sources:
        check_source_kind(source, source_kinds, file=str(config.path))
    channels = {name: check_channel(channel, channel_kinds) for name, channel in config.alerts.channels.items()}
    alerts = replace(config.alerts, channels=channels)
    check_themes(alerts.subscriptions, themes)
    return replace(config, alerts=alerts)


ENV_OVERRIDES = {"database": "WATCHER_DATABASE", "model_precision": "WATCHER_MODEL_PRECISION"}


def with_env_overrides(settings: Settings, file: str = "(defaults)") -> Settings:
    """``settings`` with the environment's overrides (``ENV_OVERRIDES``) applied and checked."""
    values: dict[str, Any] = {key: value for key, variable in ENV_OVERRIDES.items() if (value := env(variable))}
    if "database" in values:  # a path from the environment is relative to where the command runs, as in a shell
        values["database"] = str(Path(os.path.expanduser(values["database"])).absolute())
    for key, value in values.items():
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"${ENV_OVERRIDES[key]} must be one of {', '.join(CHOICES[key])}, not {value!r}",
                              file=file, key=key)
    return replace(settings, **values) if values else settings


def _settings(table: Mapping[str, Any], file: str) -> Settings:
    unknown = set(table) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}",
                          file=file, table="[settings]", key=sorted(unknown)[0])
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in table:
            continue
        value, default = table[f.name], DEFAULTS[f.name]
        if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, (int, float)) and not isinstance(value, (int, float))
        ) or (isinstance(default, str) and not isinstance(value, str)):
            raise ConfigError(f"expected {type(default).__name__}, got {value!r}", file=file, table="[settings]",
                              key=f.name)
        if f.name in CHOICES and value not in CHOICES[f.name]:
            raise ConfigError(f"must be one of {', '.join(CHOICES[f.name])}, not {value!r}", file=file,
                              table="[settings]", key=f.name)
        values[f.name] = type(default)(value)
    return Settings(**values)


def _interval(table: Mapping[str, Any], key: str, default: str, file: str, where: str) -> int:
    try:
        return parse_interval(table.get(key, default))
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, table=where, key=key) from None


def _check_profile_keys(table: Mapping[str, Any], file: str, where: str) -> None:
    """Types of ``legal`` and ``default_theme`` (the theme itself is checked against the taxonomy by ``App``)."""
    if not isinstance(table.get("legal", False), bool):
        raise ConfigError("must be true or false", file=file, table=where, key="legal")
    if not isinstance(table.get("default_theme", ""), str):
        raise ConfigError("must be a theme id (a string)", file=file, table=where, key="default_theme")


def _source(table: Mapping[str, Any], index: int, file: str) -> SourceConfig:
    where = f"[[source]] #{index}" + (f" ({table['name']})" if isinstance(table.get("name"), str) else "")
    for key in ("name", "kind", "url"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise ConfigError("missing or empty (a string is required)", file=file, table=where, key=key)
    options = {k: v for k, v in table.items() if k not in COMMON_KEYS}
    interval = _interval(table, "interval", "6h", file, where)
    quiet = _interval(table, "expect_new_within", "0s", file, where)
    every = _interval(table, "window_every", "10m", file, where)
    try:
        windows = parse_windows(table.get("windows", []))
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, table=where, key="windows") from None
    lang = table.get("lang", "fr")
    if lang not in ("fr", "en"):
        raise ConfigError(f"lang must be 'fr' or 'en', not {lang!r}", file=file, table=where, key="lang")
    _check_profile_keys(table, file, where)
    if not str(table["url"]).startswith(("http://", "https://")):
        raise ConfigError("must be an http(s) URL", file=file, table=where, key="url")
    return SourceConfig(
        name=table["name"], kind=table["kind"], url=table["url"], interval=interval, lang=lang,
        enabled=bool(table.get("enabled", True)), label=str(table.get("label", "")),
        publisher=str(table.get("publisher", "")), default_theme=str(table.get("default_theme", "")),
        legal=table.get("legal", False) is True, expect_new_within=quiet, windows=windows, window_every=every,
        options=options, table=where,
    )
