"""The trained part of the hybrid classifier: a small logistic head on sentence embeddings, per theme.

``Head`` holds, for each theme: the logistic weights (themes with fewer than ``MIN_POSITIVES`` labelled items get
none and rely on their description prototype), the mean and spread of the cosine to the description prototype,
the decision threshold on the combined logit, and a few exemplars (titles + embeddings of the labelled items closest
to the theme's centre) quoted in reasons ("similar to: ..."). It is saved as a small ``.npz`` (no pickle).

How the shipped ``classifiers/data/head.npz`` is rebuilt (about a minute)::

    watcher train --gold tests/fixtures/gold/dev.jsonl --output classifiers/data/head.npz

Constants (``C``, ``MARGIN``, ``CLIP``, ``NEG_WEIGHT``) were chosen by 5-fold cross-validation on the dev set with the head fitted on
the training folds only (see ``cross_validate`` and ``benchmarks/bench_classify_quality.py``); per-theme thresholds
are chosen on out-of-fold logits of the training data: the highest F1 among thresholds that keep recall >= 0.95,
within [-1, 1] (0 when there is too little data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifiers.evaluation import GOLD_SOURCES, Example
from classifiers.rules import Rules, SourceProfile, logits
from classifiers.themes import Taxonomy
from watcher.models import Item

if TYPE_CHECKING:
    from classifiers.e5 import Embedder

C = 0.03  # inverse regularisation of the logistic head (on standardised embeddings)
# The head's logit h moves the rules' logit asymmetrically: up by min(CLIP, h - MARGIN) when the model is confident
# (h > MARGIN), down by at most NEG_WEIGHT * CLIP when it is confident of the opposite (h < -MARGIN). The rules keep
# the last word on clear cases; the model settles the weak ones and adds recall where no rule fires.
MARGIN = 2.0
CLIP = 4.0
NEG_WEIGHT = 0.25
PROTO_BETA = 1.5  # themes without a head: weight of the description prototype beyond PROTO_Z standard deviations
PROTO_Z = 2.5
PROTO_CAP = 2.0
MIN_POSITIVES = 5
EXEMPLARS = 6
THRESHOLD_GRID = tuple(np.round(np.arange(-1.0, 1.01, 0.25), 2))
THRESHOLD_GAIN = 0.01
DEFAULT_HEAD = Path(__file__).parent / "data" / "head.npz"


@dataclass
class Head:
    theme_ids: tuple[str, ...]
    weights: np.ndarray  # (themes, dim); rows of zeros for themes without a head
    bias: np.ndarray  # (themes,)
    has_head: np.ndarray  # (themes,) bool
    proto_mean: np.ndarray  # (themes,) mean cosine of training items to the description prototype
    proto_std: np.ndarray  # (themes,)
    thresholds: np.ndarray  # (themes,) on the combined logit
    slope: float = 1.0  # calibration: score = sigmoid(slope * (logit - threshold))
    exemplar_theme: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    exemplar_title: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U2"))
    exemplar_vec: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float16))
    embedder: str = ""
    trained_on: int = 0

    @property
    def version(self) -> str:
        stored = self.weights.astype(np.float16).tobytes() + self.thresholds.astype(np.float32).tobytes()
        digest = hashlib.sha256(stored)
        return f"head-{digest.hexdigest()[:10]}"

    def logits(self, X: np.ndarray) -> np.ndarray:
        """(items, themes) logits of the head; 0 where a theme has no head."""
        out = X @ self.weights.T + self.bias
        return np.where(self.has_head, out, 0.0)

    def proto_z(self, cosines: np.ndarray) -> np.ndarray:
        return (cosines - self.proto_mean) / np.maximum(self.proto_std, 1e-6)

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path, theme_ids=np.array(self.theme_ids), weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32), has_head=self.has_head, proto_mean=self.proto_mean.astype(np.float32),
            proto_std=self.proto_std.astype(np.float32), thresholds=self.thresholds.astype(np.float32),
            slope=np.float32(self.slope), exemplar_theme=self.exemplar_theme, exemplar_title=self.exemplar_title,
            exemplar_vec=self.exemplar_vec.astype(np.float16), embedder=np.array(self.embedder),
            trained_on=np.int32(self.trained_on))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_HEAD) -> Head:
        with np.load(path, allow_pickle=False) as z:
            return cls(theme_ids=tuple(str(t) for t in z["theme_ids"]), weights=z["weights"].astype(np.float32),
                       bias=z["bias"], has_head=z["has_head"], proto_mean=z["proto_mean"], proto_std=z["proto_std"],
                       thresholds=z["thresholds"], slope=float(z["slope"]), exemplar_theme=z["exemplar_theme"],
                       exemplar_title=z["exemplar_title"], exemplar_vec=z["exemplar_vec"].astype(np.float32),
                       embedder=str(z["embedder"]), trained_on=int(z["trained_on"]))


def combine(rule_logits: np.ndarray, head: Head, X: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """The hybrid logit: rules + the head's confident opinion (or the description prototype for themes without a
    head)."""
    h = head.logits(X)
    model = np.clip(h - MARGIN, 0.0, CLIP) + NEG_WEIGHT * np.clip(h + MARGIN, -CLIP, 0.0)
    proto = PROTO_BETA * np.clip(head.proto_z(cosines) - PROTO_Z, 0.0, PROTO_CAP)
    return rule_logits + np.where(head.has_head, model, proto)


def model_bounds(head: Head) -> tuple[np.ndarray, np.ndarray]:
    """Per theme, the lowest and highest amount :func:`combine` can add to the rules' logit, whatever the
    embedding: where the rules' logit is beyond the threshold by more than that, the model cannot change the
    decision."""
    low = np.where(head.has_head, -NEG_WEIGHT * CLIP, 0.0)
    high = np.where(head.has_head, CLIP, PROTO_BETA * PROTO_CAP)
    return low.astype(np.float32), high.astype(np.float32)


def labels(examples: Sequence[Example], theme_ids: Sequence[str]) -> np.ndarray:
    return np.array([[t in e.themes for t in theme_ids] for e in examples], dtype=np.int8)


def rule_matrix(examples: Sequence[Example], theme_ids: Sequence[str],
                profiles: Mapping[str, SourceProfile] = GOLD_SOURCES) -> np.ndarray:
    rows = logits(Rules(theme_ids, profiles), [e.item for e in examples])
    return np.array([[r[t] for t in theme_ids] for r in rows], dtype=np.float32)


def folds(n: int, k: int = 5, seed: int = 0) -> np.ndarray:
    """A fold number for each of ``n`` items (a fixed random permutation)."""
    return np.random.default_rng(seed).permutation(n) % k


def _fit_weights(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic regression per theme on standardised embeddings, folded back into weights on raw embeddings."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(axis=0), np.maximum(X.std(axis=0), 1e-6)
    Xs = (X - mean) / scale
    weights = np.zeros((Y.shape[1], X.shape[1]), dtype=np.float32)
    bias = np.zeros(Y.shape[1], dtype=np.float32)
    has = Y.sum(axis=0) >= MIN_POSITIVES
    for j in np.flatnonzero(has):
        lr = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(Xs, Y[:, j])
        weights[j] = lr.coef_[0] / scale
        bias[j] = lr.intercept_[0] - float(lr.coef_[0] @ (mean / scale))
    return weights, bias, has


def _exemplars(X: np.ndarray, Y: np.ndarray, titles: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theme_idx, chosen = [], []
    for j in range(Y.shape[1]):
        pos = np.flatnonzero(Y[:, j])
        if not len(pos):
            continue
        centre = X[pos].mean(axis=0)
        best = pos[np.argsort(-(X[pos] @ centre))[:EXEMPLARS]]
        theme_idx += [j] * len(best)
        chosen += list(best)
    short = np.array([" ".join(titles[i].split())[:100] for i in chosen], dtype="<U100")
    return np.array(theme_idx, dtype=np.int32), short, X[chosen].astype(np.float16)


def choose_thresholds(z: np.ndarray, Y: np.ndarray, min_recall: float = 0.95) -> np.ndarray:
    """Per theme: the grid threshold with the best F1 among those keeping recall >= ``min_recall``; 0 unless another
    threshold is better by more than ``THRESHOLD_GAIN`` (a few items must not move it)."""
    out = np.zeros(Y.shape[1], dtype=np.float32)
    for j in range(Y.shape[1]):
        if Y[:, j].sum() < MIN_POSITIVES:
            continue
        keys = {float(t): _threshold_key(z[:, j], Y[:, j] == 1, float(t), min_recall) for t in THRESHOLD_GRID}
        best = max(keys, key=lambda t: (keys[t], -abs(t)))
        out[j] = best if keys[best] > keys[0.0] + THRESHOLD_GAIN else 0.0
    return out


def _threshold_key(z: np.ndarray, gold: np.ndarray, t: float, min_recall: float) -> float:
    pred = z > t
    tp = float((pred & gold).sum())
    f1 = 2 * tp / max(1.0, float(pred.sum() + gold.sum()))
    return f1 if tp / max(1.0, float(gold.sum())) >= min_recall else f1 - 1.0


def fit_slope(z: np.ndarray, Y: np.ndarray) -> float:
    """One calibration slope for all themes: logistic fit of the labels on (logit - threshold), no intercept."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(fit_intercept=False, C=100.0, max_iter=1000).fit(z.reshape(-1, 1), Y.reshape(-1))
    return float(max(0.2, min(2.0, lr.coef_[0][0])))


def fit_head(X: np.ndarray, Y: np.ndarray, R: np.ndarray, cosines: np.ndarray, titles: Sequence[str],
             theme_ids: Sequence[str], *, embedder: str = "", inner_folds: int = 4) -> Head:
    """Fit the head on all of (X, Y); thresholds and calibration from out-of-fold logits of the same data."""
    weights, bias, has = _fit_weights(X, Y)
    ex_theme, ex_title, ex_vec = _exemplars(X, Y, titles)
    head = Head(tuple(theme_ids), weights, bias, has, cosines.mean(axis=0), cosines.std(axis=0),
                np.zeros(len(theme_ids), dtype=np.float32), 1.0, ex_theme, ex_title, ex_vec, embedder, len(X))
    oof = out_of_fold(X, Y, R, cosines, inner_folds)
    head.thresholds = choose_thresholds(oof, Y)
    head.slope = fit_slope(oof - head.thresholds, Y)
    return head


def out_of_fold(X: np.ndarray, Y: np.ndarray, R: np.ndarray, cosines: np.ndarray, k: int = 5,
                seed: int = 0) -> np.ndarray:
    """Hybrid logits of each item from a head fitted without the item's fold (thresholds not applied)."""
    z = np.zeros_like(R)
    fold = folds(len(X), k, seed)
    for f in range(k):
        train, test = fold != f, fold == f
        w, b, has = _fit_weights(X[train], Y[train])
        part = Head((), w, b, has, cosines[train].mean(axis=0), cosines[train].std(axis=0),
                    np.zeros(Y.shape[1], dtype=np.float32))
        z[test] = combine(R[test], part, X[test], cosines[test])
    return z


def cross_validate(X: np.ndarray, Y: np.ndarray, R: np.ndarray, cosines: np.ndarray, k: int = 5,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Honest k-fold predictions: for each test fold, the head, thresholds and calibration are fitted on the
    training folds only. Returns boolean (items, themes) predictions for 'hybrid', 'rules' and 'head'."""
    fold = folds(len(X), k, seed)
    hybrid = np.zeros(Y.shape, dtype=bool)
    head_only = np.zeros(Y.shape, dtype=bool)
    for f in range(k):
        train, test = fold != f, fold == f
        head = fit_head(X[train], Y[train], R[train], cosines[train], [""] * int(train.sum()), [""] * Y.shape[1])
        hybrid[test] = combine(R[test], head, X[test], cosines[test]) > head.thresholds
        head_only[test] = (head.logits(X[test]) > 0) & head.has_head
    return {"hybrid": hybrid, "rules": R > 0, "head": head_only}


def description_prototypes(embedder: Embedder, taxonomy: Taxonomy) -> np.ndarray:
    """One unit vector per theme: the mean of its FR and EN description embeddings (E5 'passage')."""
    texts = [d for theme in taxonomy for d in theme.descriptions()]
    vecs = embedder.embed(texts, kind="passage").reshape(len(taxonomy), 2, -1).mean(axis=1)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


@dataclass
class Prepared:
    """Everything training and cross-validation need, computed once: embeddings, labels, rule logits."""

    X: np.ndarray
    Y: np.ndarray
    R: np.ndarray
    cosines: np.ndarray
    titles: list[str]
    theme_ids: tuple[str, ...]


def prepare(examples: Sequence[Example], embedder: Embedder, taxonomy: Taxonomy,
            progress: Callable[[int], None] | None = None, batch_size: int = 32,
            profiles: Mapping[str, SourceProfile] = GOLD_SOURCES) -> Prepared:
    """Embeddings, labels and rule logits of ``examples``; ``profiles``: what the rules know of their sources
    (the gold file's source names by default; add the configured sources' when store corrections are in)."""
    texts = [e.item.classification_text() for e in examples]
    chunks = []
    for start in range(0, len(texts), batch_size):
        chunks.append(embedder.embed(texts[start : start + batch_size], kind="query"))
        if progress:
            progress(len(chunks[-1]))
    X = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), dtype=np.float32)
    protos = description_prototypes(embedder, taxonomy)
    ids = taxonomy.ids
    return Prepared(X, labels(examples, ids), rule_matrix(examples, ids, profiles), X @ protos.T,
                    [e.item.title for e in examples], ids)


def train(data: Prepared, embedder_name: str = "") -> Head:
    """The head for all of ``data`` (what ``watcher train`` saves)."""
    return fit_head(data.X, data.Y, data.R, data.cosines, data.titles, data.theme_ids, embedder=embedder_name)


def merge_corrections(examples: Sequence[Example],
                      corrected: Sequence[tuple[Item, Iterable[str]]]) -> list[Example]:
    """The gold examples with corrected items (item, its themes after correction) added; a correction replaces a
    gold row with the same id."""
    by_id = {e.item.id: e for e in examples}
    for item, themes in corrected:
        by_id[item.id] = Example(item, frozenset(themes), "correction")
    return list(by_id.values())
