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
    """The parsed file; a missing, unreadable or non-UTF-8 file, or invalid TOML, is a ``ConfigError`` naming
    ``path`` (TOML files are UTF-8 by definition: the message gives the line of the first bad byte)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(missing, file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=str(path)) from None
    except PermissionError:
        raise ConfigError("cannot be read: permission denied; give the user running watcher read access to it",
                          file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror or exc})", file=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); TOML files are UTF-8: "
                          "save it as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`)", file=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None
