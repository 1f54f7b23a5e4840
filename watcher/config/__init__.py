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

from watcher.config.settings import CHOICES, DEFAULTS, SETTINGS, Settings
from watcher.config.sources import COMMON_KEYS, SourceConfig, parse_interval
from watcher.errors import ConfigError

__all__ = ["Config", "Settings", "SourceConfig", "load_config", "SETTINGS", "COMMON_KEYS", "secret", "env",
           "with_env_overrides"]

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
    settings = with_env_overrides(_settings(raw.get("settings", {}), str(path)), str(path))
    sources = tuple(_source(t, n, str(path)) for n, t in enumerate(raw.get("source", []), 1))
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate source name(s): {', '.join(dupes)}", file=str(path), table="[[source]]")
    return Config(path=path, settings=settings, sources=sources, raw=raw)


ENV_OVERRIDES = {"database": "WATCHER_DATABASE", "model_precision": "WATCHER_MODEL_PRECISION"}


def with_env_overrides(settings: Settings, file: str = "(defaults)") -> Settings:
    """``settings`` with the environment's overrides (``ENV_OVERRIDES``) applied and checked."""
    values: dict[str, Any] = {key: value for key, variable in ENV_OVERRIDES.items() if (value := env(variable))}
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


def _check_profile_keys(table: Mapping[str, Any], file: str, where: str) -> None:
    """Types of ``legal`` and ``default_theme`` (the theme itself is checked against the taxonomy by ``App``)."""
    if not isinstance(table.get("legal", False), bool):
        raise ConfigError("must be true or false", file=file, table=where, key="legal")
    if not isinstance(table.get("default_theme", ""), str):
        raise ConfigError("must be a theme id (a string)", file=file, table=where, key="default_theme")


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
    try:
        interval = parse_interval(table.get("interval", "6h"))
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, table=where, key="interval") from None
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
        legal=table.get("legal", False) is True, options=options,
    )
