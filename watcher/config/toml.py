"""Reading one TOML file, or a ConfigError naming it; finding one named table among those read."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from watcher.util.errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def named(entries: Iterable[N], name: str, *, what: str, file: str | None = None) -> N:
    """The entry called ``name``; else a ``ConfigError`` "no {what} named ..." listing the known names."""
    entries = tuple(entries)
    for entry in entries:
        if entry.name == name:
            return entry
    raise ConfigError(f"no {what} named {name!r} (known: {', '.join(e.name for e in entries)})", file=file)


def read_toml(path: Path, *, missing: str = "file not found") -> dict[str, Any]:
    """The parsed file; a missing file or invalid TOML is a ``ConfigError`` naming ``path``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(missing, file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None
