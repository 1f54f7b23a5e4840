"""Reading one TOML file, or a ConfigError naming it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from watcher.errors import ConfigError


def read_toml(path: Path, *, missing: str = "file not found") -> dict[str, Any]:
    """The parsed file; a missing file or invalid TOML is a ``ConfigError`` naming ``path``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(missing, file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None
