"""The item model and the small value objects passed between steps.

An ``Item`` is what a source says it published, normalised: its ``id`` comes from what the source says the item is
(a JORFTEXT id, a CNILTEXT id, a feed GUID, a canonical URL), so a re-run never duplicates it. ``identifiers`` keeps
every legal identifier found (nor, eli, jorftext, cnil, celex, decret, ...) so that legal identity, links between a
commentary and the act it discusses and versions fit without a change of model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from watcher.util.text import is_rectificatif_nor


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    source: str
    url: str
    title: str
    summary: str = ""
    text: str = ""
    published: datetime | None = None  # timezone-aware, UTC
    lang: str = "fr"
    nature: str = ""  # type of act or of publication: LOI, DECRET, ARRETE, DELIBERATION, article, rappel...
    authority: str = ""  # issuing ministry / authority / publisher
    rubric: str = ""  # JO rubric path ("Textes généraux > Ministère de la santé ...") or site section
    identifiers: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()  # the source's own categories
    extra: Mapping[str, Any] = field(default_factory=dict)
    # the date a lawyer cites (JO issue, délibération date); None: ``published`` as a date in Europe/Paris
    legal_date: date | None = None

    def content_hash(self) -> str:
        """Hash of the parsed content (not of the file): a re-delivery with the same content is not a change."""
        fields = [self.title, self.summary, self.text, self.nature, self.authority]
        fields += [f"{k}={v}" for k, v in sorted(self.identifiers.items())]
        return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()[:32]

    @property
    def is_rectificatif(self) -> bool:
        return is_rectificatif_nor(self.identifiers.get("nor", ""))

    def classification_text(self) -> str:
        """Title and summary: what the themes are judged from."""
        return f"{self.title}. {self.summary}".strip(" .") if self.summary else self.title


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers of a source between runs."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None  # e.g. the last DILA archive processed
    consecutive_failures: int = 0
    last_success: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Collected:
    """What one source run produced: items plus the state to remember if the run is recorded as a success."""

    items: list[Item]
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    not_modified: bool = False
    requests: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ThemeTag:
    """One theme given to one item, with why."""

    theme: str
    score: float  # calibrated confidence in [0, 1]
    reason: str
    origin: str = "model"  # model | rule | human
    model: str = ""
    model_version: str = ""
