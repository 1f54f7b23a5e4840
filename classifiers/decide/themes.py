"""The theme taxonomy: ids, FR/EN labels and descriptions, baseline keywords, read from a TOML file.

The bundled ``themes.toml`` follows the labelling guideline; a file named in the settings replaces it. Unknown keys
and missing ones are errors that name the file, the theme and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.util.errors import ConfigError

DEFAULT_THEMES = Path(__file__).parents[1] / "themes.toml"
REQUIRED = ("id", "label_fr", "label_en", "description_fr", "description_en")
OPTIONAL = ("keywords",)


@dataclass(frozen=True)
class Theme:
    id: str
    label_fr: str
    label_en: str
    description_fr: str
    description_en: str
    keywords: tuple[str, ...] = ()

    def descriptions(self) -> tuple[str, str]:
        return self.description_fr, self.description_en


@dataclass(frozen=True)
class Taxonomy:
    themes: tuple[Theme, ...]
    path: str = ""

    def __iter__(self) -> Iterator[Theme]:
        return iter(self.themes)

    def __len__(self) -> int:
        return len(self.themes)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.themes)

    def get(self, theme_id: str) -> Theme:
        for theme in self.themes:
            if theme.id == theme_id:
                return theme
        raise KeyError(f"unknown theme {theme_id!r} (known: {', '.join(self.ids)})")


def load_themes(path: str | Path | None = None) -> Taxonomy:
    """Read a themes TOML file (the bundled default when ``path`` is empty)."""
    file = Path(path) if path else DEFAULT_THEMES
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("themes file not found", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(file)) from None
    tables = raw.get("theme")
    if not isinstance(tables, list) or not tables:
        raise ConfigError("no [[theme]] table", file=str(file))
    themes = tuple(_theme(t, n, str(file)) for n, t in enumerate(tables, 1))
    ids = [t.id for t in themes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"duplicate theme id(s): {', '.join(dupes)}", file=str(file), table="[[theme]]")
    return Taxonomy(themes=themes, path=str(file))


def _theme(table: Mapping[str, Any], number: int, file: str) -> Theme:
    where = f"[[theme]] #{number}"
    unknown = sorted(set(table) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}", file=file, table=where)
    for key in REQUIRED:
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise ConfigError("missing or empty", file=file, table=where, key=key)
    keywords = table.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise ConfigError("must be a list of non-empty strings", file=file, table=where, key="keywords")
    return Theme(id=table["id"].strip(), label_fr=table["label_fr"], label_en=table["label_en"],
                 description_fr=" ".join(table["description_fr"].split()),
                 description_en=" ".join(table["description_en"].split()),
                 keywords=tuple(keywords))
