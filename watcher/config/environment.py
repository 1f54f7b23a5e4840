"""The only place that reads the environment: settings overrides and secrets named by config keys."""

from __future__ import annotations

import os

from watcher.util import redact
from watcher.util.errors import ConfigError


def env(name: str, default: str | None = None) -> str | None:
    """Read one environment variable. Every other module asks here."""
    return os.environ.get(name, default)


def secret(variable: str, *, file: str, table: str, key: str) -> str:
    """The value of the environment variable a config key names; a clear error if it is not set. The value is
    registered with ``watcher.util.redact``, so no log line or error message ever shows it."""
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"environment variable {variable} is not set", file=file, table=table, key=key)
    redact.register(value)
    return value
