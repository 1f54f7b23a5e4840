"""What every theme classifier offers: a name and version (stored with each tag), ``classify`` and ``scope``.

``classify`` takes a batch of items and returns, for each, the themes it gives (possibly none), each with a score in
[0, 1] and a reason a lawyer can read. ``scope`` is the recall safety net: for an item that got no theme, it says
why the item is nevertheless in scope (``"source: cnil"``, ``"authority: Ministère de la santé"``...) or ``None``;
the store flags such items instead of dropping them silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from watcher.models import Item, ThemeTag


@runtime_checkable
class Classifier(Protocol):
    @property
    def name(self) -> str:
        """Stored with each tag as the model."""
        ...

    @property
    def version(self) -> str:
        """Stored with each tag as the model version."""
        ...

    def classify(self, items: Sequence[Item]) -> list[list[ThemeTag]]:
        """The themes of each item, in the order given."""
        ...

    def scope(self, item: Item) -> str | None:
        """Why ``item`` is in scope even though it has no theme, or ``None`` when it is not."""
        ...
