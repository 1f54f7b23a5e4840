"""Training helpers of the theme head: labels and rule matrices of gold examples, folds, the calibration
slope, exemplars, people's corrections merged into the gold. Lab code: the production path
never imports it (the head itself is ``classifiers.decide.head``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from classifiers.decide.head import RuleFlags
from classifiers.decide.hybrid import rule_flags
from classifiers.decide.rules import Rules, SourceProfile
from classifiers.decide.themes import Taxonomy
from classifiers.lab.evaluation import GOLD_SOURCES, Example
from watcher.models import Item

MIN_POSITIVES = 5
EXEMPLARS = 6


def labels(examples: Sequence[Example], theme_ids: Sequence[str]) -> np.ndarray:
    return np.array([[t in e.themes for t in theme_ids] for e in examples], dtype=np.int8)


def rule_matrix(examples: Sequence[Example], taxonomy: Taxonomy,
                profiles: Mapping[str, SourceProfile] = GOLD_SOURCES) -> tuple[np.ndarray, RuleFlags]:
    """(rule logits (items, themes), what else the rules say) of ``examples``: see ``head.combine``."""
    rules = Rules(taxonomy, profiles)
    found = [rules.findings(e.item) for e in examples]
    return (np.array([[f.logit(t) for t in taxonomy.ids] for f in found], dtype=np.float32).reshape(len(found),
                                                                                                    len(taxonomy)),
            rule_flags(found, taxonomy.ids))


def folds(n: int, k: int = 5, seed: int = 0) -> np.ndarray:
    """A fold number for each of ``n`` items (a fixed random permutation)."""
    return np.random.default_rng(seed).permutation(n) % k


def exemplars(X: np.ndarray, Y: np.ndarray, titles: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def fit_slope(z: np.ndarray, Y: np.ndarray) -> float:
    """One calibration slope for all themes: logistic fit of the labels on (logit - threshold), no intercept."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(fit_intercept=False, C=100.0, max_iter=1000).fit(z.reshape(-1, 1), Y.reshape(-1))
    return float(max(0.2, min(2.0, lr.coef_[0][0])))


def merge_corrections(examples: Sequence[Example],
                      corrected: Sequence[tuple[Item, Iterable[str]]]) -> list[Example]:
    """The gold examples with corrected items (item, its themes after correction) added; a correction replaces a
    gold row with the same id."""
    by_id = {e.item.id: e for e in examples}
    for item, themes in corrected:
        by_id[item.id] = Example(item, frozenset(themes), "correction")
    return list(by_id.values())
