"""Fine-tuning multilingual-e5-small for the themes: low-rank adapters on the upper layers and two heads.

What is trained: for each of the ``top_layers`` upper transformer layers, a low-rank update (LoRA, Hu et al. 2021)
of its six dense matrices (attention query/key/value/output, intermediate, output), and two linear heads over the
normalised mean-pooled embedding, one output per theme: the **model alone** (``head``) and the **joint** head, whose
logit is added to the rules' clipped logit weighted per theme by a learnt ``rule_weight`` (``head.combine``).
The loss is the sum of both heads' losses: the encoder learns the themes, the joint head what the rules get wrong.
Everything else, the word embeddings and the lower layers included, stays frozen, so the input of the first trained
layer is computed once per item (:meth:`Frozen.states`) and training runs the trained layers only, on batches of
items of similar length (:func:`train`; its cost on 2 cores: docs/semantic.md).

What is kept: a ``head.Head`` with the :class:`classifiers.engine.adapter.Adapter` inside (the low-rank factors, the
settings and the SHA-256 of the converted weights they were trained on). At load time the update is
**merged into the weights** (``W += scale * B @ A``): the encoder keeps its shape and runs on every
path as before (bf16 or fp32, fused or not; see ``classifiers.engine.capability``).

Training is reproducible: the initialisation and the order of the batches come from ``seed``, the frozen states are
computed in float32 whatever the CPU, and torch runs with a fixed thread count; two runs with the same seed on the
same machine give the same weights (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifiers.decide.head import RULE_CLIP, Head, Policy, RuleFlags, combine
from classifiers.decide.rules import SourceProfile
from classifiers.decide.themes import Taxonomy
from classifiers.engine.adapter import Adapter
from classifiers.engine.tuning import SCALE, Frozen, Tuned, TuneSettings, adapter_of, fit, predict
from classifiers.lab.evaluation import GOLD_SOURCES, Example
from classifiers.lab.training import (
    MIN_POSITIVES,
    exemplars,
    fit_slope,
    folds,
    labels,
    rule_matrix,
)

DEFAULTS = TuneSettings()
THRESHOLDS = -0.5  # the hybrid gives a theme above this combined logit (chosen by benchmarks/bench_loso.py --variants)

# -- the whole training --------------------------------------------------------------------------------------------
if TYPE_CHECKING:
    import torch


@dataclass
class Trained:
    """What :func:`train` gives: the head (adapter inside) and what was measured on the way."""

    head: Head
    oof: np.ndarray  # out-of-fold hybrid logits of the training items (thresholds not applied)
    oof_model: np.ndarray  # out-of-fold head logits
    Y: np.ndarray
    R: np.ndarray
    flags: RuleFlags
    seconds: dict[str, float]


def out_of_fold(frozen: Frozen, states: Sequence[torch.Tensor], Y: np.ndarray, rules: tuple[np.ndarray, RuleFlags],
                taxonomy: Taxonomy, settings: TuneSettings, k: int,
                log: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the model alone's logits, the hybrid's logits before thresholds) of each item, from a model trained without
    the item's fold (``k`` trainings)."""
    R, flags = rules
    policy = Policy.of(taxonomy)
    fold = folds(len(states), k, settings.seed)
    alone, hybrid = np.zeros(Y.shape, dtype=np.float32), np.zeros(Y.shape, dtype=np.float32)
    for f in range(k):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        model = fit(frozen, [states[int(i)] for i in train], Y[train], clip_rules(R[train]), settings)
        protos = prototypes(frozen, model, taxonomy)
        X = predict(model, [states[int(i)] for i in train])[2]
        head = head_of(model, X, Y[train], X @ protos.T, taxonomy.ids)
        alone[test], joint, X_test = predict(model, [states[int(i)] for i in test])
        hybrid[test] = combine(R[test], flags.rows(test), head, joint, X_test @ protos.T, alone=alone[test],
                               policy=policy)
        if log:
            log(f"fold {f + 1}/{k} trained")
    return alone, hybrid


def clip_rules(R: np.ndarray) -> np.ndarray:
    return np.clip(R, -RULE_CLIP, RULE_CLIP)  # type: ignore[no-any-return]


def train(examples: Sequence[Example], taxonomy: Taxonomy, model_dir: Path, settings: TuneSettings = DEFAULTS,
          *, k: int = 3, profiles: Mapping[str, SourceProfile] = GOLD_SOURCES,
          log: Callable[[str], None] | None = None) -> Trained:
    """Fine-tune on ``examples``: ``k`` trainings give out-of-fold logits (the calibration slope of the scores is
    fitted on them, and ``summary`` reports them), then one training on all the examples gives the adapter and
    heads that are kept. The decision thresholds are ``THRESHOLDS`` for every theme, chosen on left-out sets by
    ``benchmarks/bench_loso.py --variants`` (recall first), not tuned on the training data."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    frozen = Frozen(model_dir, settings)
    ids = taxonomy.ids
    states = frozen.states([e.item.classification_text() for e in examples])
    Y, (R, flags) = labels(examples, ids), rule_matrix(examples, taxonomy, profiles)
    seconds["frozen layers"] = time.perf_counter() - start
    oof_alone, oof = out_of_fold(frozen, states, Y, (R, flags), taxonomy, settings, k, log)
    seconds["cross-validation"] = time.perf_counter() - start - sum(seconds.values())
    model = fit(frozen, states, Y, clip_rules(R), settings, log)
    X = predict(model, states)[2]
    protos = prototypes(frozen, model, taxonomy)
    seconds["final training"] = time.perf_counter() - start - sum(seconds.values())
    head = head_of(model, X, Y, X @ protos.T, ids, adapter_of(model, frozen, len(examples)),
                   [e.item.title for e in examples])
    head.thresholds = np.full(len(ids), THRESHOLDS, dtype=np.float32)
    head.slope = fit_slope(oof - head.thresholds, Y)
    return Trained(head, oof, oof_alone, Y, R, flags, seconds)


def prototypes(frozen: Frozen, model: Tuned, taxonomy: Taxonomy) -> np.ndarray:
    texts = [d for theme in taxonomy for d in theme.descriptions()]
    vecs = predict(model, frozen.states(texts, prefix="passage: "))[2]
    protos = vecs.reshape(len(taxonomy), 2, -1).mean(axis=1)
    return protos / np.linalg.norm(protos, axis=1, keepdims=True)  # type: ignore[no-any-return]


def head_of(model: Tuned, X: np.ndarray, Y: np.ndarray, cosines: np.ndarray, ids: Sequence[str],
            adapter: Adapter | None = None, titles: Sequence[str] | None = None) -> Head:
    """The ``Head`` of a trained model (thresholds 0: the caller chooses them out of fold); ``X``, ``Y``,
    ``cosines``: its training items' embeddings, labels and cosines to the description prototypes."""
    has = Y.sum(axis=0) >= MIN_POSITIVES

    def linear(layer: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
        weights = layer.weight.detach().numpy() * SCALE
        return np.where(has[:, None], weights, 0.0).astype(np.float32), layer.bias.detach().numpy().astype(np.float32)

    (weights, bias), (joint, joint_bias) = linear(model.head), linear(model.joint)
    ex_theme, ex_title, ex_vec = exemplars(X, Y, titles) if titles is not None else (
        np.zeros(0, np.int32), np.zeros(0, "<U2"), np.zeros((0, X.shape[1]), np.float16))
    return Head(tuple(ids), weights, bias, has, cosines.mean(axis=0), cosines.std(axis=0),
                np.zeros(len(ids), dtype=np.float32), 1.0, ex_theme, ex_title, ex_vec, "", len(X), adapter, RULE_CLIP,
                joint, joint_bias, model.rule_weight.detach().numpy().astype(np.float32))


def summary(trained: Trained, theme_ids: Sequence[str]) -> list[str]:
    """Out-of-fold macro-F1 of the rules, the model and the hybrid on the training items, with per-theme P/R."""
    parts = {"rules": trained.R > 0, "model": trained.oof_model > 0, "hybrid": trained.oof > trained.head.thresholds}
    lines = []
    for name, pred in parts.items():
        scores = _per_theme(pred, trained.Y)
        macro = float(np.mean([f for f, _, _ in scores.values()])) if scores else 0.0
        detail = ", ".join(f"{theme_ids[j]} {p:.2f}/{r:.2f}" for j, (_, p, r) in scores.items())
        lines.append(f"out-of-fold {name}: macro-F1 {macro:.3f} (P/R {detail})")
    return lines


def _per_theme(pred: np.ndarray, Y: np.ndarray) -> dict[int, tuple[float, float, float]]:
    out = {}
    for j in np.flatnonzero(Y.sum(axis=0)):
        gold = Y[:, j] == 1
        tp = float((pred[:, j] & gold).sum())
        out[int(j)] = (2 * tp / float(pred[:, j].sum() + gold.sum()), tp / max(1.0, float(pred[:, j].sum())),
                       tp / float(gold.sum()))
    return out
