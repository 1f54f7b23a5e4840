"""The hybrid theme classifier: legal identifiers decide, the fine-tuned model decides what the rules cannot.

For each item and theme the rules (``classifiers.decide.rules``) give a logit from keywords, legal identifiers, the source
and negative rules. The model (e5-small fine-tuned for the themes, ``classifiers.lab.finetune``) gives its own logit from
the item's embedding through the trained head (``classifiers.decide.head.Head``), or, for a theme with too few labelled
examples such as ``dmuu-reprocessing``, from the similarity to the theme's FR/EN description. They are combined as
``head.combine`` says: a legal identifier is decisive; elsewhere the rules' logit counts up to a bound and the
model's is added, so a borderline or silent rule is settled by the model (legal angle or not, health data or health
in general). A theme is given when the combined logit is above the theme's threshold; its score is
``sigmoid(slope * (logit - threshold))`` (calibrated on out-of-fold data), its reason lists what matched, what the
model said and which part decided ("decided by: identifier | rules | rules and model | rules (the model
disagreed) | model"); a theme the rules would have given and the model took away is named in the result's note.

**The model is consulted only where it can change a decision.** What the head adds is bounded
(``head.model_bounds``): when, for every theme, a legal identifier decides or the clipped rules' logit is beyond
the threshold by more than the model could move it, the item is decided by the rules and identifiers alone and is
not embedded. The themes given are then
exactly those the full hybrid would give (only the scores of such items, and the "model suggests" note on untagged
ones, come from the rules alone). Each result says whether the model was consulted and why.

**The model can fail; classification cannot.** Any failure of the model (loading, a kernel, memory) is logged once,
in one line saying what failed, what is done and how to pin a path; the classifier then goes on with the rules and
identifiers, its ``version`` says ``rules-only (model failed: ...)`` and ``degraded`` holds the reason.

The embedder is loaded lazily, on the first batch that needs it: building the classifier costs nothing when there is
nothing new to classify. ``HybridClassifier(embedder_factory=None)`` runs on the rules alone (fast tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifiers.decide import rules as rules_module
from classifiers.decide.base import Classified
from classifiers.decide.head import (
    DEFAULT_HEAD,
    PROTO_Z,
    Head,
    Policy,
    RuleFlags,
    combine,
    description_prototypes,
    kept,
    model_bounds,
    weighted_rules,
)
from classifiers.decide.rules import Findings, Rules, SourceProfile, reason_text, sigmoid
from classifiers.decide.themes import Taxonomy, load_themes
from watcher.models import Item, ThemeTag
from watcher.util.errors import ClassifierError

if TYPE_CHECKING:
    from classifiers.engine.e5 import Embedder

log = logging.getLogger("watcher.classifiers")

NAME = "hybrid"
SUGGEST = 0.5  # model probability above which an untagged item is flagged as "model suggests ..."
RULES_ONLY = "none"  # the ``model`` setting that keeps the embedding model out
PIN_HINT = ('pin a path with model_precision = "float32" (or $WATCHER_MODEL_PRECISION=float32), or turn the model '
            'off with model = "none" / --rules-only')


@dataclass(frozen=True)
class ModelSettings:
    """The part of ``[settings]`` the classifier reads (the composition root fills it from the config)."""

    model: str = "e5-small"  # "none": rules and identifiers only
    model_cache: str = ""  # folder of converted models ("" = ~/.cache/watcher/models)
    model_precision: str = "auto"  # auto | float32 | bfloat16 | int8
    themes: str = ""  # a themes TOML file ("" = the bundled taxonomy)


class HybridClassifier:
    """Rules + embedding head. See the module docstring."""

    name = NAME

    def __init__(self, taxonomy: Taxonomy | None = None, *,
                 embedder_factory: Callable[[], Embedder] | None = None, head: Head | None = None,
                 model_name: str = "", profiles: Mapping[str, SourceProfile] | None = None,
                 failure: str | None = None, consult_all: bool = False):
        self.taxonomy = taxonomy or load_themes()
        self.rules = Rules(self.taxonomy, profiles)
        self.policy = Policy.of(self.taxonomy)
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self._prototypes: np.ndarray | None = None
        self.head = _align(head, self.taxonomy.ids) if head is not None and embedder_factory else None
        self.model_name = model_name if self.head is not None else ""
        self.consult_all = consult_all  # embed every item, decisive or not (to measure what gating changes)
        self.degraded: str | None = None
        if failure:
            self._fail(failure)

    @property
    def version(self) -> str:
        parts = [f"rules-{rules_module.VERSION}"]
        if self.degraded:
            return f"{parts[0]} rules-only (model failed: {self.degraded})"
        if self.head is not None:
            parts += [self.head.version, self.model_name or "model"]
        return "+".join(parts)

    @property
    def uses_model(self) -> bool:
        return self.head is not None and not self.degraded

    # -- the model, loaded on first use ---------------------------------------------------------------------------
    def embedder(self) -> Embedder:
        if self._embedder is None:
            assert self._factory is not None
            embedder = self._factory()
            _check_pair(self.head, embedder)
            self._embedder = embedder
        return self._embedder

    def prototypes(self) -> np.ndarray:
        """One unit vector per theme: the mean of its FR and EN description embeddings (E5 'passage')."""
        if self._prototypes is None:
            self._prototypes = description_prototypes(self.embedder(), self.taxonomy)
        return self._prototypes

    def _embed(self, items: Sequence[Item]) -> np.ndarray | None:
        """The items' embeddings, or ``None`` once the model has failed (then the rules go on alone)."""
        try:
            self.prototypes()
            return self.embedder().embed([item.classification_text() for item in items], kind="query")
        except Exception as exc:  # any model failure (load, kernel, memory) must leave classification running
            self._fail(f"{type(exc).__name__}: {_first_line(exc)}")
            return None

    def _fail(self, reason: str) -> None:
        self.degraded = reason
        log.error("theme model failed (%s); classifying with rules and identifiers only; %s", reason, PIN_HINT)

    # -- classification -------------------------------------------------------------------------------------------
    def classify(self, items: Sequence[Item]) -> list[Classified]:
        if not items:
            return []
        findings = [self.rules.findings(item) for item in items]
        R = np.array([[f.logit(t) for t in self.taxonomy.ids] for f in findings], dtype=np.float32)
        if not self.uses_model:
            note = f"not consulted: model failed ({self.degraded})" if self.degraded else "not consulted: rules only"
            return [self._result(item, f, R[i], np.zeros(len(R[i])), None, note)
                    for i, (item, f) in enumerate(zip(items, findings, strict=True))]
        return self._classify_with_model(items, findings, R)

    def _classify_with_model(self, items: Sequence[Item], findings: list[Findings], R: np.ndarray) -> list[Classified]:
        assert self.head is not None
        flags = rule_flags(findings, self.taxonomy.ids)
        open_themes = self.undecided(R, flags)
        consult = np.arange(len(items)) if self.consult_all else np.flatnonzero(open_themes.any(axis=1))
        X = self._embed([items[int(i)] for i in consult]) if len(consult) else np.zeros((0, 0), dtype=np.float32)
        if X is None:
            return self.classify(items)  # degraded now: the rules alone
        Z = R.copy()
        if len(consult):
            Z[consult] = combine(R[consult], flags.rows(consult), self.head, self.head.joint_logits(X),
                                 X @ self.prototypes().T, alone=self.head.logits(X), policy=self.policy)
        rows = dict(zip(consult.tolist(), X, strict=True))
        out = []
        for i, item in enumerate(items):
            x = rows.get(i)
            left = ", ".join(np.array(self.taxonomy.ids)[open_themes[i]]) or "no theme"
            note = f"consulted: rules leave {left} open" if x is not None else "not consulted: rules decisive"
            overruled = [t for j, t in enumerate(self.taxonomy.ids)
                         if x is not None and R[i, j] > 0 and Z[i, j] <= self.head.thresholds[j]]
            if overruled:
                note += f"; the model overruled the rules on {', '.join(overruled)}"
            out.append(self._result(item, findings[i], Z[i], self.head.thresholds, x, note))
        return out

    def undecided(self, R: np.ndarray, flags: RuleFlags | np.ndarray) -> np.ndarray:
        """(items, themes) True where the model could still change the rules' decision (see the module doc);
        ``flags``: what else the rules say (:func:`rule_flags`; a bool array: where a legal identifier decides)."""
        assert self.head is not None
        if isinstance(flags, np.ndarray):
            flags = RuleFlags(flags, np.zeros_like(flags), np.zeros_like(flags))
        low, high = model_bounds(self.head)
        t = self.head.thresholds
        rules = weighted_rules(R, self.head)
        keep, drop = kept(R, flags, self.policy)
        return ~(keep | drop | (rules + low > t) | (rules + high <= t))

    def _result(self, item: Item, found: Findings, z: np.ndarray, thresholds: np.ndarray, x: np.ndarray | None,
                note: str) -> Classified:
        tags = self._tags(found, z, thresholds, x)
        scope = None if tags else (self.rules.scope(item) or self._suggestion(x))
        return Classified(tags, scope, note, embedding=x)

    def _tags(self, found: Findings, z: np.ndarray, thresholds: np.ndarray, x: np.ndarray | None) -> list[ThemeTag]:
        tags = []
        slope = self.head.slope if self.head is not None else 1.0
        for j, theme in enumerate(self.taxonomy.ids):
            if z[j] <= thresholds[j]:
                continue
            model = self._model_logit(j, x) if x is not None else None
            extra = self._model_reason(j, x, model) if x is not None and model is not None else ""
            extra = "; ".join(p for p in (extra, f"decided by: {decided_by(found, theme, model)}") if p)
            tags.append(ThemeTag(theme=theme, score=round(sigmoid(slope * float(z[j] - thresholds[j])), 4),
                                 reason=reason_text(found.of(theme), extra),
                                 origin="model" if x is not None else "rule", model=self._model_label(),
                                 model_version=self._model_version()))
        return tags

    def _model_logit(self, j: int, x: np.ndarray) -> float:
        """The model's own say on theme ``j``: the head's logit, or what the description prototype adds."""
        assert self.head is not None
        if self.head.has_head[j]:
            return float(self.head.logits(x[None, :])[0, j])
        return float(self.head.proto_z(x[None, :] @ self.prototypes().T)[0, j] - PROTO_Z)

    def _model_reason(self, j: int, x: np.ndarray, logit: float) -> str:
        """"model: 0.91" (the head's probability) or "close to the description (+3.1 sd)", and the closest
        exemplar; ``logit`` is :meth:`_model_logit`'s."""
        assert self.head is not None
        if self.head.has_head[j]:
            text = f"model: {sigmoid(logit):.2f}"
        else:
            text = f"model: close to the description ({logit + PROTO_Z:+.1f} sd)"
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

    @property
    def full_version(self) -> str:
        """``version`` plus, once loaded, the embedder's (which names the path taken: ``torch-fp32+fused``...)."""
        return self._model_version()

    def _model_version(self) -> str:
        if self._embedder is None:
            return self.version
        return f"{self.version}/{self._embedder.version}"

    # -- recall safety net ----------------------------------------------------------------------------------------
    def _suggestion(self, x: np.ndarray | None) -> str | None:
        """'model suggests THEME (p)' for an untagged item the head leans to, else None."""
        if x is None or self.head is None:
            return None
        probs = np.where(self.head.has_head, 1.0 / (1.0 + np.exp(-self.head.logits(x[None, :])[0])), 0.0)
        j = int(np.argmax(probs))
        return f"model suggests {self.taxonomy.ids[j]} ({probs[j]:.2f})" if probs[j] >= SUGGEST else None


def decided_by(found: Findings, theme: str, model: float | None) -> str:
    """Which part gave a tag: "identifier" when a legal identifier or reference act names the theme (decisive),
    "rules" when the model was not consulted, else "rules and model" when both lean to it, "rules (grounded: the
    model disagreed)" when the source's own theme and its words keep it although the model leans against it, "rules
    (the model disagreed)" when the rules were strong enough alone, "model" when the model lifted a theme the rules
    alone would not give."""
    if found.certain(theme):
        return "identifier"
    if model is None:
        return "rules"
    if found.logit(theme) > 0:
        if model > 0:
            return "rules and model"
        return "rules (grounded: the model disagreed)" if found.grounded(theme) else "rules (the model disagreed)"
    return "model"


def rule_flags(findings: Sequence[Findings], theme_ids: Sequence[str]) -> RuleFlags:
    """The :class:`RuleFlags` of a batch from the rules' findings."""
    def matrix(test: Callable[[Findings, str], bool]) -> np.ndarray:
        return np.array([[test(f, t) for t in theme_ids] for f in findings], dtype=bool).reshape(len(findings),
                                                                                                   len(theme_ids))

    return RuleFlags(matrix(Findings.certain), matrix(Findings.grounded), matrix(Findings.excluded))


def _check_pair(head: Head | None, embedder: Embedder) -> None:
    """A head reads the vectors of the encoder it was trained with (fine-tuned by its adapter, or not): anything
    else would give wrong themes quietly, so it is a model failure (``ClassifierError``)."""
    if head is None:
        return
    from classifiers.engine.e5 import tuned_name

    tuned = tuned_name(head.adapter)
    if tuned and tuned not in embedder.version:
        raise ClassifierError(f"the head was trained with the fine-tuned encoder {tuned[1:]}; this encoder is "
                              f"{embedder.version}")
    if not tuned and "+lora-" in embedder.version:
        raise ClassifierError(f"the head was trained with the original encoder; this encoder is {embedder.version}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else "(no message)"


def _align(head: Head, theme_ids: Sequence[str]) -> Head:
    """The head restricted/reordered to ``theme_ids``; themes it does not know get no head and neutral stats."""
    if tuple(head.theme_ids) == tuple(theme_ids):
        return head
    index = {t: j for j, t in enumerate(head.theme_ids)}
    dim = head.weights.shape[1]

    def pick(values: np.ndarray, default: float) -> np.ndarray:
        return np.array([values[index[t]] if t in index else default for t in theme_ids], dtype=np.float32)

    def rows(matrix: np.ndarray) -> np.ndarray:
        return np.stack([matrix[index[t]] if t in index else np.zeros(dim) for t in theme_ids]).astype(np.float32)

    has = np.array([bool(head.has_head[index[t]]) if t in index else False for t in theme_ids])
    old_to_new = {index[t]: n for n, t in enumerate(theme_ids) if t in index}
    keep = np.array([int(j) in old_to_new for j in head.exemplar_theme], dtype=bool)
    remap = np.array([old_to_new[int(j)] for j in head.exemplar_theme[keep]], dtype=np.int32)
    return Head(tuple(theme_ids), rows(head.weights), pick(head.bias, 0.0), has,
                pick(head.proto_mean, 0.82), pick(head.proto_std, 0.03), pick(head.thresholds, 0.0), head.slope,
                remap, head.exemplar_title[keep], head.exemplar_vec[keep], head.embedder, head.trained_on,
                head.adapter, head.rule_clip, rows(head.joint_weights), pick(head.joint_bias, 0.0),
                pick(head.rule_weight, 1.0))


def head_path(database: str | Path | None = None) -> Path:
    """The head retrained by ``watcher train`` (``head.npz`` next to the database) if there is one, else the
    bundled one."""
    if database and str(database) != ":memory:":
        local = Path(database).with_name("head.npz")
        if local.exists():
            return local
    return DEFAULT_HEAD


def build_classifier(settings: ModelSettings, head: Path = DEFAULT_HEAD,
                     profiles: Mapping[str, SourceProfile] | None = None) -> HybridClassifier:
    """The classifier the pipeline uses: taxonomy and model from ``settings``, the trained head from ``head``,
    what the rules know of each source from ``profiles``. ``model = "none"`` gives the rules alone; a head that
    cannot be read gives the rules alone, marked as degraded."""
    taxonomy = load_themes(settings.themes or None)
    model = settings.model or "e5-small"
    if model == RULES_ONLY:
        return HybridClassifier(taxonomy, profiles=profiles)
    try:
        trained = Head.load(head)
    except (OSError, ValueError, KeyError) as exc:
        return HybridClassifier(taxonomy, profiles=profiles, failure=f"cannot read the head {head}: {exc}")

    def factory() -> Embedder:
        return model_embedder(settings, trained)

    return HybridClassifier(taxonomy, embedder_factory=factory, head=trained, model_name=model, profiles=profiles)


def model_embedder(settings: ModelSettings, head: Head | Path | None = DEFAULT_HEAD, *,
                   threads: int | None = None) -> Embedder:
    """The embedder of ``settings.model``, fine-tuned by ``head``'s adapter if it has one: the same vectors the
    classifier computes (and stores for search by meaning). ``threads``: torch's intra-op threads (default:
    torch's own choice)."""
    from classifiers.decide.quality import int8_check
    from classifiers.engine.e5 import load_embedder

    trained = Head.load(head) if isinstance(head, Path) else head
    adapter = trained.adapter if trained is not None and (settings.model or "e5-small") == "e5-small" else None
    cache = Path(settings.model_cache) if settings.model_cache else None
    # the int8 path is used on `auto` only once it gave the themes of float32 on real items (run once per machine)
    check = int8_check(trained, load_themes(settings.themes or None)) if trained is not None else None
    return load_embedder(settings.model or "e5-small", cache, precision=settings.model_precision,  # type: ignore[arg-type]
                         adapter=adapter, int8_check=check, threads=threads)
