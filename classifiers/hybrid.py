"""The hybrid theme classifier: transparent rules first, the embedding model on top.

For each item and theme the rules (``classifiers.rules``) give a logit from keywords, legal identifiers, the source
and negative rules. When an embedder is available, the item is embedded (batch by batch) and the trained head
(``classifiers.training.Head``) adds its own clipped logit, or, for a theme with too few labelled examples such as
``dmuu-reprocessing``, the similarity to the theme's FR/EN description. A theme is given when the combined logit is
above the theme's threshold; its score is ``sigmoid(slope * (logit - threshold))`` (calibrated on out-of-fold
data), its reason lists what matched and what the model found it similar to.

The embedder is loaded lazily, on the first batch that needs it: building the classifier costs nothing when there is
nothing new to classify. ``HybridClassifier(embedder_factory=None)`` runs on the rules alone (fast tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifiers import rules as rules_module
from classifiers.rules import Findings, Rules, reason_text, scope_reason, sigmoid
from classifiers.themes import Taxonomy, load_themes
from classifiers.training import DEFAULT_HEAD, Head, combine, description_prototypes
from watcher.models import Item, ThemeTag

if TYPE_CHECKING:
    from classifiers.e5 import Embedder

NAME = "hybrid"
SUGGEST = 0.5  # model probability above which an untagged item is flagged as "model suggests ..."


class HybridClassifier:
    """Rules + embedding head. See the module docstring."""

    name = NAME

    def __init__(self, taxonomy: Taxonomy | None = None, *,
                 embedder_factory: Callable[[], Embedder] | None = None, head: Head | None = None,
                 model_name: str = ""):
        self.taxonomy = taxonomy or load_themes()
        self.rules = Rules(self.taxonomy.ids)
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self._prototypes: np.ndarray | None = None
        self.head = _align(head, self.taxonomy.ids) if head is not None and embedder_factory else None
        self.model_name = model_name if self.head is not None else ""
        self._suggestions: dict[str, str] = {}
        self.embeddings: dict[str, np.ndarray] = {}  # item id -> embedding of the last batch (kept in the archive)

    @property
    def version(self) -> str:
        parts = [f"rules-{rules_module.VERSION}"]
        if self.head is not None:
            parts += [self.head.version, self.model_name or "model"]
        return "+".join(parts)

    @property
    def uses_model(self) -> bool:
        return self.head is not None

    # -- the model, loaded on first use ---------------------------------------------------------------------------
    def embedder(self) -> Embedder:
        if self._embedder is None:
            assert self._factory is not None
            self._embedder = self._factory()
        return self._embedder

    def prototypes(self) -> np.ndarray:
        """One unit vector per theme: the mean of its FR and EN description embeddings (E5 'passage')."""
        if self._prototypes is None:
            self._prototypes = description_prototypes(self.embedder(), self.taxonomy)
        return self._prototypes

    # -- classification -------------------------------------------------------------------------------------------
    def classify(self, items: Sequence[Item]) -> list[list[ThemeTag]]:
        if not items:
            return []
        findings = [self.rules.findings(item) for item in items]
        R = np.array([[f.logit(t) for t in self.taxonomy.ids] for f in findings], dtype=np.float32)
        if self.head is None:
            out = [self._tags(f, R[i], np.zeros(len(R[i])), None) for i, f in enumerate(findings)]
            self._suggestions = {}
            return out
        X = self.embedder().embed([item.classification_text() for item in items], kind="query")
        self.embeddings = {item.id: X[i] for i, item in enumerate(items)}
        Z = combine(R, self.head, X, X @ self.prototypes().T)
        out = [self._tags(f, Z[i], self.head.thresholds, X[i]) for i, f in enumerate(findings)]
        self._remember_suggestions(items, out, X)
        return out

    def _tags(self, found: Findings, z: np.ndarray, thresholds: np.ndarray, x: np.ndarray | None) -> list[ThemeTag]:
        tags = []
        slope = self.head.slope if self.head is not None else 1.0
        for j, theme in enumerate(self.taxonomy.ids):
            if z[j] <= thresholds[j]:
                continue
            extra = self._model_reason(j, x) if x is not None else ""
            extra = "; ".join(p for p in (extra, f"decided by: {decided_by(found.logit(theme), x is not None)}") if p)
            tags.append(ThemeTag(theme=theme, score=round(sigmoid(slope * float(z[j] - thresholds[j])), 4),
                                 reason=reason_text(found.of(theme), extra),
                                 origin="model" if x is not None else "rule", model=self._model_label(),
                                 model_version=self._model_version()))
        return tags

    def _model_reason(self, j: int, x: np.ndarray) -> str:
        assert self.head is not None
        if self.head.has_head[j]:
            prob = sigmoid(float(self.head.logits(x[None, :])[0, j]))
            text = f"model: {prob:.2f}"
        else:
            cosine = float(x @ self.prototypes()[j])
            z = (cosine - float(self.head.proto_mean[j])) / max(float(self.head.proto_std[j]), 1e-6)
            text = f"model: close to the description ({z:+.1f} sd)"
        similar = self._similar(j, x)
        return f"{text}; similar to: {similar}" if similar else text

    def _similar(self, j: int, x: np.ndarray) -> str:
        assert self.head is not None
        rows = np.flatnonzero(self.head.exemplar_theme == j)
        if not len(rows):
            return ""
        sims = self.head.exemplar_vec[rows] @ x
        best = rows[int(np.argmax(sims))]
        return f"« {self.head.exemplar_title[best]} » ({float(np.max(sims)):.2f})"

    def _model_label(self) -> str:
        if self._embedder is None:
            return NAME
        return f"{NAME}/{self._embedder.name}"

    def _model_version(self) -> str:
        if self._embedder is None:
            return self.version
        return f"{self.version}/{self._embedder.version}"

    # -- recall safety net ----------------------------------------------------------------------------------------
    def _remember_suggestions(self, items: Sequence[Item], tags: list[list[ThemeTag]], X: np.ndarray) -> None:
        assert self.head is not None
        probs = 1.0 / (1.0 + np.exp(-self.head.logits(X)))
        probs = np.where(self.head.has_head, probs, 0.0)
        self._suggestions = {}
        for i, item in enumerate(items):
            j = int(np.argmax(probs[i]))
            if not tags[i] and probs[i, j] >= SUGGEST:
                self._suggestions[item.id] = f"model suggests {self.taxonomy.ids[j]} ({probs[i, j]:.2f})"

    def scope(self, item: Item) -> str | None:
        """In scope by rule (health ministry, CNIL, ANSM, HAS...) or because the model leans to a theme."""
        return scope_reason(item) or self._suggestions.get(item.id)


def decided_by(rule_logit: float, with_model: bool) -> str:
    """Which part gave a tag: "rules" when the rules alone give it (the model, when there, did not overrule them),
    "model" when only the model's opinion lifted the theme over its threshold."""
    return "rules" if rule_logit > 0 or not with_model else "model"


def _align(head: Head, theme_ids: Sequence[str]) -> Head:
    """The head restricted/reordered to ``theme_ids``; themes it does not know get no head and neutral stats."""
    if tuple(head.theme_ids) == tuple(theme_ids):
        return head
    index = {t: j for j, t in enumerate(head.theme_ids)}
    dim = head.weights.shape[1]

    def pick(values: np.ndarray, default: float) -> np.ndarray:
        return np.array([values[index[t]] if t in index else default for t in theme_ids], dtype=np.float32)

    weights = np.stack([head.weights[index[t]] if t in index else np.zeros(dim) for t in theme_ids])
    has = np.array([bool(head.has_head[index[t]]) if t in index else False for t in theme_ids])
    old_to_new = {index[t]: n for n, t in enumerate(theme_ids) if t in index}
    keep = np.array([int(j) in old_to_new for j in head.exemplar_theme], dtype=bool)
    remap = np.array([old_to_new[int(j)] for j in head.exemplar_theme[keep]], dtype=np.int32)
    return Head(tuple(theme_ids), weights.astype(np.float32), pick(head.bias, 0.0), has,
                pick(head.proto_mean, 0.82), pick(head.proto_std, 0.03), pick(head.thresholds, 0.0), head.slope,
                remap, head.exemplar_title[keep], head.exemplar_vec[keep], head.embedder, head.trained_on)


def head_path(store: Any = None) -> Path:
    """The head retrained by ``watcher train`` (next to the database) if there is one, else the bundled one."""
    path = getattr(store, "path", "")
    if path and path != ":memory:":
        local = Path(path).with_name("head.npz")
        if local.exists():
            return local
    return DEFAULT_HEAD


def build_classifier(settings: Any, store: Any = None) -> HybridClassifier:
    """The classifier the pipeline uses: taxonomy and model from the settings, head from ``head_path``."""
    from classifiers.e5 import load_embedder

    model = getattr(settings, "model", "e5-small") or "e5-small"
    cache = getattr(settings, "model_cache", "") or None

    def factory() -> Embedder:
        return load_embedder(model, Path(cache) if cache else None)

    return HybridClassifier(load_themes(getattr(settings, "themes", "") or None), embedder_factory=factory,
                            head=Head.load(head_path(store)), model_name=model)
