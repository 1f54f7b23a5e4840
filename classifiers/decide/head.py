"""The trained head of the hybrid classifier, and how its opinion is combined with the rules'.

``Head`` holds, for each theme: a linear layer over the item's embedding (the fine-tuned model's multi-label head,
see ``classifiers.lab.finetune``; themes with fewer than ``MIN_POSITIVES`` labelled items get none and rely on their
description prototype), the mean and spread of the cosine to the description prototype, the decision threshold on
the combined logit, a few exemplars (titles + embeddings of labelled items close to the theme's centre) quoted in
reasons ("similar to: ..."), the fine-tuned encoder update (``classifiers.engine.adapter``) and the two constants of the
combination. It is saved as a small ``.npz`` (no pickle).

**Who decides what** (:func:`combine`): a theme backed by a legal identifier (décret n° 2025-895, règlement (UE)
2024/1689...) is given whatever the model says. Elsewhere the rules' logit is clipped to ``±rule_clip``, so keywords,
the source and the off-topic rules count as strong evidence but not as a verdict, and the model's logit, weighted by
``model_weight``, is added: where the rules are borderline or silent, the model decides. Both constants were chosen
by cross-validation on the training data (``benchmarks/bench_finetune.py``); the thresholds (-0.5 for every theme)
were chosen on left-out labelled sets (``benchmarks/bench_loso.py --variants``). Recall first (:func:`combine`,
:class:`Policy`): what the themes file lets the model do to the rules' decision, per theme.

How the shipped ``classifiers/data/head.npz`` is rebuilt: ``watcher train`` (see ``classifiers.lab.finetune``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifiers.decide.themes import Taxonomy
from classifiers.engine.adapter import Adapter

if TYPE_CHECKING:
    from classifiers.engine.e5 import Embedder

RULE_CLIP = 3.0  # the rules' logit counts up to this much either way, except a legal identifier's (decisive)
MODEL_CLIP = 3.0  # and the joint head's up to this much
PROTO_BETA = 1.5  # themes without a head: weight of the description prototype beyond PROTO_Z standard deviations
PROTO_Z = 2.5
PROTO_CAP = 2.0
CERTAIN_FLOOR = 1.0
DEFAULT_HEAD = Path(__file__).parents[1] / "data" / "head.npz"


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
    adapter: Adapter | None = None  # the encoder's fine-tuned update the head was trained with (merged at load)
    rule_clip: float = RULE_CLIP
    # the joint head (trained beside the rules, see classifiers.lab.finetune) and the rules' learnt weight per theme
    joint_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    joint_bias: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    rule_weight: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def version(self) -> str:
        stored = self.weights.astype(np.float16).tobytes() + self.thresholds.astype(np.float32).tobytes()
        digest = hashlib.sha256(stored)
        if self.adapter is not None:
            digest.update(self.adapter.version.encode())
        return f"head-{digest.hexdigest()[:10]}"

    def logits(self, X: np.ndarray) -> np.ndarray:
        """(items, themes) logits of the model alone; 0 where a theme has no head."""
        out = X @ self.weights.T + self.bias
        return np.where(self.has_head, out, 0.0)

    def joint_logits(self, X: np.ndarray) -> np.ndarray:
        """(items, themes) logits of the joint head: what the model adds to the weighted rules (see combine)."""
        out = X @ self.joint_weights.T + self.joint_bias
        return np.where(self.has_head, out, 0.0)

    def proto_z(self, cosines: np.ndarray) -> np.ndarray:
        return (cosines - self.proto_mean) / np.maximum(self.proto_std, 1e-6)

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        adapter: dict[str, Any] = self.adapter.arrays() if self.adapter is not None else {}
        np.savez_compressed(
            path, **adapter, theme_ids=np.array(self.theme_ids), weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32), has_head=self.has_head, proto_mean=self.proto_mean.astype(np.float32),
            proto_std=self.proto_std.astype(np.float32), thresholds=self.thresholds.astype(np.float32),
            slope=np.float32(self.slope), exemplar_theme=self.exemplar_theme, exemplar_title=self.exemplar_title,
            exemplar_vec=self.exemplar_vec.astype(np.float16), embedder=np.array(self.embedder),
            trained_on=np.int32(self.trained_on), rule_clip=np.float32(self.rule_clip),
            joint_weights=self.joint_weights.astype(np.float16), joint_bias=self.joint_bias.astype(np.float32),
            rule_weight=self.rule_weight.astype(np.float32))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_HEAD) -> Head:
        with np.load(path, allow_pickle=False) as z:
            return cls(theme_ids=tuple(str(t) for t in z["theme_ids"]), weights=z["weights"].astype(np.float32),
                       bias=z["bias"], has_head=z["has_head"], proto_mean=z["proto_mean"], proto_std=z["proto_std"],
                       thresholds=z["thresholds"], slope=float(z["slope"]), exemplar_theme=z["exemplar_theme"],
                       exemplar_title=z["exemplar_title"], exemplar_vec=z["exemplar_vec"].astype(np.float32),
                       embedder=str(z["embedder"]), trained_on=int(z["trained_on"]), adapter=Adapter.from_arrays(z),
                       rule_clip=float(z["rule_clip"]), joint_weights=z["joint_weights"].astype(np.float32),
                       joint_bias=z["joint_bias"], rule_weight=z["rule_weight"])


@dataclass(frozen=True)
class Policy:
    """Per theme (arrays in the taxonomy's order), what the model may do to the rules' decision (the themes file's
    ``[theme.model]``): ``add`` a theme the rules do not give, ``remove`` one they give on words alone, and take
    away a *grounded* one (``Findings.grounded``) only where the model alone's probability is below
    ``remove_grounded`` (0: never)."""

    add: np.ndarray
    remove: np.ndarray
    remove_grounded: np.ndarray

    @classmethod
    def of(cls, taxonomy: Taxonomy) -> Policy:
        return cls(np.array([t.model.add for t in taxonomy], dtype=bool),
                   np.array([t.model.remove for t in taxonomy], dtype=bool),
                   np.array([t.model.remove_grounded for t in taxonomy], dtype=np.float32))

    @classmethod
    def default(cls, themes: int) -> Policy:
        return cls(np.ones(themes, dtype=bool), np.ones(themes, dtype=bool), np.zeros(themes, dtype=np.float32))


@dataclass(frozen=True)
class RuleFlags:
    """What the rules say of a batch besides their logits, each (items, themes) bool: a legal identifier names the
    theme (``certain``), the rules give it on firm ground (``grounded``), the guideline's off-topic list applies
    (``excluded``)."""

    certain: np.ndarray
    grounded: np.ndarray
    excluded: np.ndarray

    @classmethod
    def none(cls, shape: tuple[int, ...]) -> RuleFlags:
        return cls(np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool))

    def rows(self, index: np.ndarray) -> RuleFlags:
        return RuleFlags(self.certain[index], self.grounded[index], self.excluded[index])


def combine(rule_logits: np.ndarray, flags: RuleFlags | np.ndarray, head: Head, joint: np.ndarray,
            cosines: np.ndarray, *, alone: np.ndarray | None = None, policy: Policy | None = None) -> np.ndarray:
    """The hybrid logit (items, themes) from the rules' logits, what else the rules say (``flags``; a bare bool
    array means ``certain`` only), the joint head's logits ``joint`` and the cosines to the description prototypes:
    ``rule_weight * clip(rules, ±rule_clip) + clip(joint, ±MODEL_CLIP)``; for a theme without a head, the clipped
    rules plus what the description prototype adds. Then, recall first: a theme the rules give is kept (lifted to
    ``CERTAIN_FLOOR`` above its threshold at least) where a legal identifier names it, where it is grounded and the
    policy does not let the model remove it (or the model alone, ``alone``, is not sure enough against it), and
    where the policy does not let the model remove anything; a theme the rules do not give stays out where the
    policy does not let the model add it; the guideline's off-topic list excludes whatever the model says."""
    if isinstance(flags, np.ndarray):
        flags = RuleFlags(flags, np.zeros_like(flags), np.zeros_like(flags))
    policy = policy or Policy.default(rule_logits.shape[1])
    rules = np.clip(rule_logits, -head.rule_clip, head.rule_clip)
    proto = PROTO_BETA * np.clip(head.proto_z(cosines) - PROTO_Z, 0.0, PROTO_CAP)
    with_model = head.rule_weight * rules + np.clip(joint, -MODEL_CLIP, MODEL_CLIP)
    z = np.where(head.has_head, with_model, rules + proto)
    keep, drop = kept(rule_logits, flags, policy, alone)
    z = np.where(keep, np.maximum(z, head.thresholds + CERTAIN_FLOOR), z)
    return np.where(drop, np.minimum(z, head.thresholds - CERTAIN_FLOOR), z)  # type: ignore[no-any-return]


def kept(rule_logits: np.ndarray, flags: RuleFlags, policy: Policy,
         alone: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(keep, drop), each (items, themes): where the policy decides whatever the model's joint head says (see
    :func:`combine`). Without ``alone`` (the model alone's logits), a grounded theme that the model may remove on
    strong evidence is neither kept nor dropped: the model must be consulted."""
    given = rule_logits > 0
    if alone is None:
        sure_against = np.zeros_like(given)
    else:
        sure_against = 1.0 / (1.0 + np.exp(-alone)) < policy.remove_grounded
    grounded = flags.grounded & given & (policy.remove_grounded <= 0.0) if alone is None else (
        flags.grounded & given & ~sure_against)
    keep = (flags.certain | grounded | (given & ~policy.remove)) & ~flags.excluded
    drop = flags.excluded | (~given & ~policy.add & ~flags.certain)
    return keep, drop


def weighted_rules(rule_logits: np.ndarray, head: Head) -> np.ndarray:
    """The rules' part of :func:`combine` (themes without a head: the clipped logit itself)."""
    rules = np.clip(rule_logits, -head.rule_clip, head.rule_clip)
    return np.where(head.has_head, head.rule_weight * rules, rules)


def model_bounds(head: Head) -> tuple[np.ndarray, np.ndarray]:
    """Per theme, the lowest and highest amount :func:`combine` adds to :func:`weighted_rules`, whatever the
    embedding: where the rules are beyond the threshold by more than that, the model cannot change the decision."""
    high = np.where(head.has_head, MODEL_CLIP, PROTO_BETA * PROTO_CAP)
    low = np.where(head.has_head, -MODEL_CLIP, 0.0)
    return low.astype(np.float32), high.astype(np.float32)


def description_prototypes(embedder: Embedder, taxonomy: Taxonomy) -> np.ndarray:
    """One unit vector per theme: the mean of its FR and EN description embeddings (E5 'passage')."""
    texts = [d for theme in taxonomy for d in theme.descriptions()]
    vecs = embedder.embed(texts, kind="passage").reshape(len(taxonomy), 2, -1).mean(axis=1)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
