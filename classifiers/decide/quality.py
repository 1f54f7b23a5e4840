"""What a faster model path must not change: the themes of real items (the int8 check, ``classifiers.engine.int8``).

:func:`int8_check` gives the engine a :class:`~classifiers.engine.int8.QualityCheck` over the real items bundled in
``classifiers/data/check_items.jsonl`` (the distinct items of the gold sets, labels dropped): the hybrid classifier
with the model consulted on every item (stricter than the gated pipeline), its vectors and themes. The engine runs
it with the float32 model and with the int8 one and compares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.decide import rules as rules_module
from classifiers.decide.head import Head
from classifiers.decide.themes import Taxonomy
from classifiers.engine.int8 import QualityCheck
from watcher.models import Item

CHECK_ITEMS = Path(__file__).parents[1] / "data" / "check_items.jsonl"


def check_items(path: Path = CHECK_ITEMS) -> list[Item]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [Item(id=r["id"], source=r["source"], url=r.get("url") or "", title=r["title"],
                 summary=r.get("summary") or "", lang=r.get("lang") or "fr") for r in rows]


def int8_check(head: Head, taxonomy: Taxonomy, items: Sequence[Item] | None = None,
               path: Path = CHECK_ITEMS) -> QualityCheck:
    """The check of the int8 path: vectors and themes of ``items`` (default: the bundled check items)."""
    from classifiers.decide.hybrid import HybridClassifier

    chosen = list(items) if items is not None else check_items(path)
    digest = hashlib.sha256("\n".join(i.classification_text() for i in chosen).encode()).hexdigest()[:12]
    rules = hashlib.sha256(repr(taxonomy).encode()).hexdigest()[:12]  # the themes file, as loaded
    key = f"{head.version}|rules-{rules_module.VERSION}-{rules}|{digest}"

    def run(embedder: Any) -> tuple[np.ndarray, list[list[str]]]:
        classifier = HybridClassifier(taxonomy, embedder_factory=lambda: embedder, head=head, consult_all=True)
        results = [r for start in range(0, len(chosen), 64) for r in classifier.classify(chosen[start:start + 64])]
        if classifier.degraded:
            raise RuntimeError(classifier.degraded)
        vectors = np.stack([r.embedding for r in results]) if results else np.zeros((0, 0), np.float32)
        return vectors, [list(r.themes) for r in results]

    return QualityCheck(key=key, run=run)
