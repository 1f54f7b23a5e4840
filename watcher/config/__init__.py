"""Configuration is read once, here, into frozen typed objects. This is the only module that reads the environment.

``load_config(path)`` reads ``sources.toml``: a ``[settings]`` table (see ``settings.SETTINGS``) and ``[[source]]``
tables. Every error names the file, the table and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from watcher.config.settings import DEFAULTS, SETTINGS, Settings
from watcher.config.sources import COMMON_KEYS, SourceConfig, parse_interval
from watcher.errors import ConfigError

__all__ = ["Config", "Settings", "SourceConfig", "load_config", "SETTINGS", "COMMON_KEYS", "secret", "env"]

DEFAULT_CONFIG = "sources.toml"


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    sources: tuple[SourceConfig, ...]
    raw: Mapping[str, Any]  # the whole parsed TOML, for other sections (subscriptions, channels, newsletter)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources)
        raise ConfigError(f"no source named {name!r} (known: {known})", file=str(self.path))

    @property
    def database(self) -> Path:
        db = Path(os.path.expanduser(self.settings.database))
        return db if db.is_absolute() else self.path.parent / db


def env(name: str, default: str | None = None) -> str | None:
    """Read one environment variable. Every other module asks here."""
    return os.environ.get(name, default)


def secret(variable: str, *, file: str, table: str, key: str) -> str:
    """The value of the environment variable a config key names; a clear error if it is not set."""
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"environment variable {variable} is not set", file=file, table=table, key=key)
    return value


def load_config(path: str | Path | None = None) -> Config:
    path = Path(path or env("WATCHER_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None
    settings = _settings(raw.get("settings", {}), str(path))
    db_override = env("WATCHER_DATABASE")
    if db_override:
        settings = replace(settings, database=db_override)
    sources = tuple(_source(t, n, str(path)) for n, t in enumerate(raw.get("source", []), 1))
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate source name(s): {', '.join(dupes)}", file=str(path), table="[[source]]")
    return Config(path=path, settings=settings, sources=sources, raw=raw)


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
        values[f.name] = type(default)(value)
    return Settings(**values)


def _interval(table: Mapping[str, Any], key: str, default: str, file: str, where: str) -> int:
    try:
        return parse_interval(table.get(key, default))
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, table=where, key=key) from None


def _source(table: Mapping[str, Any], index: int, file: str) -> SourceConfig:
    from watcher.sources import KINDS

    where = f"[[source]] #{index}" + (f" ({table['name']})" if isinstance(table.get("name"), str) else "")
    for key in ("name", "kind", "url"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise ConfigError("missing or empty (a string is required)", file=file, table=where, key=key)
    kind = KINDS.get(table["kind"])
    if kind is None:
        raise ConfigError(f"unknown kind {table['kind']!r}; known kinds: {', '.join(sorted(KINDS))}",
                          file=file, table=where, key="kind")
    options = {k: v for k, v in table.items() if k not in COMMON_KEYS}
    allowed = set(kind.required) | set(kind.optional)
    for key in options:
        if key not in allowed:
            hint = f"; {kind.kind} accepts: {', '.join(sorted(allowed))}" if allowed else ""
            raise ConfigError(f"unknown key for kind {kind.kind}{hint}", file=file, table=where, key=key)
    for key in kind.required:
        if key not in options:
            raise ConfigError(f"required by kind {kind.kind}", file=file, table=where, key=key)
    interval = _interval(table, "interval", "6h", file, where)
    quiet = _interval(table, "expect_new_within", "0s", file, where)
    lang = table.get("lang", "fr")
    if lang not in ("fr", "en"):
        raise ConfigError(f"lang must be 'fr' or 'en', not {lang!r}", file=file, table=where, key="lang")
    if not str(table["url"]).startswith(("http://", "https://")):
        raise ConfigError("must be an http(s) URL", file=file, table=where, key="url")
    return SourceConfig(
        name=table["name"], kind=table["kind"], url=table["url"], interval=interval, lang=lang,
        enabled=bool(table.get("enabled", True)), label=str(table.get("label", "")),
        publisher=str(table.get("publisher", "")), expect_new_within=quiet, options=options,
    )
