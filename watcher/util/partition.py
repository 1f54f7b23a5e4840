"""Groups of items joined pair by pair (union-find with path halving): the legal links' "voir aussi" groups and the
newsletter's clusters of one act and what cites it."""

from __future__ import annotations

from collections.abc import Iterable


class Partition:
    """Each item starts alone; :meth:`join` puts two items' groups together; :meth:`root` names an item's group."""

    def __init__(self, items: Iterable[str]):
        self.parent = {i: i for i in items}

    def __contains__(self, item: object) -> bool:
        return item in self.parent

    def root(self, item: str) -> str:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def join(self, a: str, b: str) -> None:
        """``a``'s group joins ``b``'s: the root of ``b`` names both."""
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[ra] = rb
