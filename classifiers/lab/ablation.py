"""The honest ablation: the same labelled file measured with the rules alone, the model alone and the hybrid, beside
the keyword baseline (``watcher classify --eval FILE``).

- **rules**: ``HybridClassifier`` without an embedder (keywords, legal identifiers, source, negative rules);
- **model**: :class:`ModelOnlyClassifier`, the trained head on the item's embedding and nothing else (themes without
  a head, such as ``dmuu-reprocessing``, use the similarity to the theme's description);
- **hybrid**: what the pipeline runs (``build_classifier``).

Every part runs through its own ``classify``, as in production; the item embeddings are computed once and shared
(:class:`MemoEmbedder`), so measuring three classifiers costs one pass of the model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from classifiers.decide.base import Classified
from classifiers.decide.head import PROTO_Z, Head
from classifiers.decide.hybrid import HybridClassifier
from classifiers.decide.keyword import KeywordClassifier
from classifiers.lab.evaluation import Example, Report, evaluate
from watcher.models import Item, ThemeTag

if TYPE_CHECKING:
    from classifiers.engine.e5 import Embedder, Kind

PARTS = ("rules", "model", "hybrid")
MODEL_ONLY = "model-only"


class MemoEmbedder:
    """An embedder whose vectors are remembered by (kind, text) for the life of the object."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self._memo))
        if missing:
            vectors = self.inner.embed(missing, kind=kind, batch_size=batch_size)
            self._memo.update(((kind, t), v) for t, v in zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[(kind, t)] for t in texts])


class ModelOnlyClassifier:
    """The model without the rules: a theme is given when the head's probability is above 0.5 (or, for a theme
    without a head, when the item is more than ``PROTO_Z`` standard deviations closer to the theme's description
    than training items are). Shares the embedder, head and prototypes of ``hybrid``."""

    name = MODEL_ONLY

    def __init__(self, hybrid: HybridClassifier):
        if hybrid.head is None:
            raise ValueError("the model-only classifier needs a hybrid classifier with a head and an embedder")
        self.hybrid = hybrid
        self.head: Head = hybrid.head
        self.taxonomy = hybrid.taxonomy

    @property
    def version(self) -> str:
        return f"{self.head.version}+{self.hybrid.model_name or 'model'}"

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """(items, themes) probabilities: the head's where it has one, else the description prototype's."""
        head = 1.0 / (1.0 + np.exp(-self.head.logits(X)))
        proto = 1.0 / (1.0 + np.exp(-(self.head.proto_z(X @ self.hybrid.prototypes().T) - PROTO_Z)))
        return np.where(self.head.has_head, head, proto)

    def classify(self, items: Sequence[Item]) -> list[Classified]:
        if not items:
            return []
        X = self.hybrid.embedder().embed([item.classification_text() for item in items], kind="query")
        P = self.probabilities(X)
        return [Classified([self._tag(int(j), float(p[j])) for j in np.flatnonzero(p > 0.5)], None,
                           "consulted: model only", embedding=x) for p, x in zip(P, X, strict=True)]

    def _tag(self, j: int, p: float) -> ThemeTag:
        how = "head" if self.head.has_head[j] else "description"
        return ThemeTag(theme=self.taxonomy.ids[j], score=round(p, 4), reason=f"model ({how}): {p:.2f}",
                        origin="model", model=self.name, model_version=self.version)


@dataclass
class Ablation:
    """The reports of one labelled file: the keyword baseline and each part measured."""

    baseline: Report
    parts: dict[str, Report]
    versions: dict[str, str]
    items: int

    def as_dict(self, main: str) -> dict[str, Any]:
        """The ``--json`` shape: ``main``'s report at the top level, the baseline and every part beside it."""
        out: dict[str, Any] = self.parts[main].as_dict()
        out["classifier"] = self.versions[main]
        out["items"] = self.items
        out["baseline"] = self.baseline.as_dict()
        out["ablation"] = {name: {**report.as_dict(), "classifier": self.versions[name]}
                           for name, report in self.parts.items()}
        return out


def classifiers_for(parts: Sequence[str], rules: HybridClassifier,
                    built: HybridClassifier | None = None) -> dict[str, Any]:
    """One classifier per requested part: ``rules`` (the rules alone), ``hybrid`` = ``built`` (what the pipeline
    would run, e.g. ``build_classifier(...)``: it consults the model where the rules leave a theme open) and the
    ``model`` alone on ``built``'s head and embedder (the model is loaded once)."""
    out: dict[str, Any] = {}
    if "rules" in parts:
        out["rules"] = rules
    if "model" in parts or "hybrid" in parts:
        if built is None or built.head is None:
            raise ValueError("measuring the model needs a hybrid classifier with a head and an embedder")
        source = built
        factory = functools.cache(lambda: MemoEmbedder(source.embedder()))  # the hybrid's embedder, loaded once
        alone = HybridClassifier(built.taxonomy, embedder_factory=factory, head=built.head,
                                 model_name=built.model_name, profiles=built.rules.profiles)
        if "hybrid" in parts:
            out["hybrid"] = built
        if "model" in parts:
            out["model"] = ModelOnlyClassifier(alone)
    return out


def run(examples: Sequence[Example], parts: Sequence[str] = PARTS, *, rules: HybridClassifier,
        built: HybridClassifier | None = None) -> Ablation:
    """Measure each part of ``parts`` and the keyword baseline on ``examples`` (see ``classifiers_for``)."""
    classifiers = classifiers_for(parts, rules, built)
    taxonomy = rules.taxonomy
    ids = taxonomy.ids
    reports = {name: evaluate(c, examples, ids) for name, c in classifiers.items()}
    versions = {name: f"{c.name} {getattr(c, 'full_version', c.version)}" for name, c in classifiers.items()}
    baseline = evaluate(KeywordClassifier(taxonomy), examples, ids)
    return Ablation(baseline, {p: reports[p] for p in parts}, versions, len(examples))


def format_ablation(ablation: Ablation) -> str:
    """A side-by-side text table: the keyword baseline, then each part, P / R / F1 per theme and macro-F1."""
    columns = [("keyword baseline", ablation.baseline), *ablation.parts.items()]
    head = f"{'theme':<20} {'support':>7}" + "".join(f"   {name:^20}" for name, _ in columns)
    sub = f"{'':<20} {'':>7}" + "".join(f"   {'P':>6} {'R':>6} {'F1':>6}" for _ in columns)
    lines = [head, sub]
    for theme, first in ablation.baseline.themes.items():
        cells = "".join(f"   {r.themes[theme].precision:>6.3f} {r.themes[theme].recall:>6.3f} "
                        f"{r.themes[theme].f1:>6.3f}" for _, r in columns)
        lines.append(f"{theme:<20} {first.support:>7}{cells}")
    lines.append(f"{'macro-F1':<20} {'':>7}" + "".join(f"   {'':>6} {'':>6} {r.macro_f1:>6.3f}"
                                                      for _, r in columns))
    lines.append("macro-F1 = mean F1 over the themes with support > 0 in the file; "
                 "rules = rules and identifiers only, model = the embedding model alone, hybrid = both")
    return "\n".join(lines)

