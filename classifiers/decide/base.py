"""What every theme classifier offers: a name and version (stored with each classification) and ``classify``.

``classify`` takes a batch of items and returns, for each, a :class:`Classified`: the themes it gives (possibly
none), each with a score in [0, 1] and a reason a lawyer can read; for an item without a theme, ``scope`` says why
the item is nevertheless in scope (``"source: CNIL"``, ``"authority: ministère de la santé"``...) so the store flags
it instead of dropping it silently (the recall safety net); ``model`` says whether the embedding model was consulted
for the item, and why. Everything about one item comes back with it: a classifier keeps no per-item state between
calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from watcher.models import Item, ThemeTag


@dataclass(frozen=True)
class Classified:
    """What a classifier says of one item."""

    tags: list[ThemeTag] = field(default_factory=list)
    scope: str | None = None  # why the item is in scope although it got no theme; None when tagged or out of scope
    model: str = ""  # "consulted: ...", "not consulted: rules decisive", "not consulted: model failed"...
    embedding: Any = None  # the item's embedding (a float32 vector) when the model computed one: kept in the archive

    @property
    def themes(self) -> list[str]:
        return [t.theme for t in self.tags]


@runtime_checkable
class Classifier(Protocol):
    @property
    def name(self) -> str:
        """Stored with each classification as the model."""
        ...

    @property
    def version(self) -> str:
        """Stored with each classification as the model version (says which path ran, or that the model failed)."""
        ...

    def classify(self, items: Sequence[Item]) -> list[Classified]:
        """What the classifier says of each item, in the order given."""
        ...
