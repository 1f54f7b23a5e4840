"""Versions people can read: what changed between two contents of one item (a rectified or re-delivered JO text,
an edited post), as a unified diff (``difflib``) of its title, summary, text and kind of act, one line per
sentence so that a changed word shows as one changed line, not as a changed paragraph."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIELDS = ("title", "summary", "text", "nature")
_SENTENCE = re.compile(r"(?<=[.;:!?])\s+(?=\S)")


@dataclass(frozen=True)
class VersionDiff:
    old: int  # version numbers
    new: int
    seen_at: str  # when the newer content was first seen
    header: str  # "version 1 → 2 (2026-06-12T20:55:12Z)"
    text: str  # the unified diff, '' if only hidden fields changed
    fields: tuple[str, ...]  # which of FIELDS changed


def _lines(value: Any) -> list[str]:
    """A field as lines: its own lines, each cut into sentences."""
    out: list[str] = []
    for line in str(value or "").splitlines():
        out.extend(part for part in _SENTENCE.split(line.strip()) if part)
    return [line + "\n" for line in out]


def diff_pair(old: Mapping[str, Any], new: Mapping[str, Any], *, context: int = 3) -> tuple[str, tuple[str, ...]]:
    """The unified diff of two versions (rows with ``FIELDS``), field by field, and the fields that changed."""
    parts: list[str] = []
    changed: list[str] = []
    for field in FIELDS:
        before, after = _lines(old.get(field)), _lines(new.get(field))
        if before == after:
            continue
        changed.append(field)
        parts.extend(difflib.unified_diff(before, after, fromfile=f"{field} (v{old.get('version')})",
                                          tofile=f"{field} (v{new.get('version')})", n=context))
    return "".join(parts), tuple(changed)


def diff_versions(history: Sequence[Mapping[str, Any]], *, context: int = 3) -> list[VersionDiff]:
    """Each change between consecutive versions (oldest first) where something a person reads changed."""
    out = []
    for old, new in zip(history, history[1:], strict=False):
        text, changed = diff_pair(old, new, context=context)
        if not changed:
            continue
        seen = str(new.get("seen_at") or "")
        header = f"version {old.get('version')} → {new.get('version')}" + (f" ({seen})" if seen else "")
        out.append(VersionDiff(int(old.get("version") or 0), int(new.get("version") or 0), seen, header, text,
                               changed))
    return out
