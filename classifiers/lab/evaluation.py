"""Measure a classifier on a labelled file in the gold format (one JSON object per line: id, source, lang, title,
summary, url, published, themes, agreement).

Per theme: precision, recall, F1 and support (number of items labelled with it). **Macro-F1 is the mean F1 over the
themes that have at least one labelled item in the file** (the usual convention: a theme absent from the file, like
``dmuu-reprocessing`` in dev, has no recall to measure). Such a theme is still reported, with recall 1.0 and
precision and F1 of 1.0 when it was never given, 0.0 when it was (so a spurious tag shows), but it does not enter the
macro average.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifiers.decide.base import Classifier
from classifiers.decide.rules import SourceProfile
from watcher.models import Item

# The gold format names sources by kind of publisher, not by their names in sources.toml. Each profile is the one
# the matching configured source has (cnil -> [[source]] cnil, ansm -> ansm-actualites, health_data_hub ->
# health-data-hub, legal_press -> the law firms...), so that rules judge a gold item as they judge the same item in
# production (tests/test_classifier.py checks the two tables agree).
GOLD_SOURCES: dict[str, SourceProfile] = {
    "cnil": SourceProfile("CNIL", "personal-data", legal=True),
    "edpb": SourceProfile("EDPB", "personal-data", legal=True),
    "edps": SourceProfile("EDPS", "personal-data", legal=True),
    "ansm": SourceProfile("ANSM", "health-products", legal=True),
    "health_data_hub": SourceProfile("Health Data Hub", "health-data", legal=True),
    "jorf": SourceProfile("DILA", legal=True),
    "dila-jorf": SourceProfile("DILA", legal=True),
    "dila-cnil": SourceProfile("CNIL", legal=True),
    "legal_press": SourceProfile("legal press", legal=True),
    # decisions of other data-protection authorities and of courts (GDPRhub summaries): a DPA is judged like the
    # CNIL or the EDPB, a court as a legal source without a theme of its own
    "dpa_eu": SourceProfile("autorité de protection des données", "personal-data", legal=True),
    "court_eu": SourceProfile("juridiction", legal=True),
}


@dataclass(frozen=True)
class Example:
    item: Item
    themes: frozenset[str]
    agreement: str = ""


@dataclass
class ThemeScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        if self.tp + self.fp == 0:
            return 1.0 if self.support == 0 else 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 1.0

    @property
    def f1(self) -> float:
        if self.support == 0:
            return 1.0 if self.fp == 0 else 0.0
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "support": self.support}


@dataclass
class Report:
    themes: dict[str, ThemeScore] = field(default_factory=dict)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (item id, theme, "fp" | "fn")
    model_consulted: int = 0  # items the classifier ran its embedding model on

    @property
    def macro_f1(self) -> float:
        scored = [s.f1 for s in self.themes.values() if s.support > 0]
        return sum(scored) / len(scored) if scored else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"macro_f1": round(self.macro_f1, 4), "themes": {t: s.as_dict() for t, s in self.themes.items()}}


def item_from_gold(row: dict[str, Any]) -> Item:
    return Item(id=str(row["id"]), source=row.get("source") or "", url=row.get("url") or "",
                title=row.get("title") or "", summary=row.get("summary") or "", lang=row.get("lang") or "fr")


def load_gold(path: str | Path) -> list[Example]:
    examples = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                examples.append(Example(item_from_gold(row), frozenset(row.get("themes") or ()),
                                        row.get("agreement") or ""))
    return examples


def score(predicted: Iterable[Iterable[str]], examples: Sequence[Example], theme_ids: Sequence[str]) -> Report:
    report = Report(themes={t: ThemeScore() for t in theme_ids})
    for example, themes in zip(examples, predicted, strict=True):
        given = set(themes)
        for theme in theme_ids:
            counts, gold = report.themes[theme], theme in example.themes
            if gold and theme in given:
                counts.tp += 1
            elif theme in given:
                counts.fp += 1
                report.errors.append((example.item.id, theme, "fp"))
            elif gold:
                counts.fn += 1
                report.errors.append((example.item.id, theme, "fn"))
    return report


def evaluate(classifier: Classifier, examples: Sequence[Example], theme_ids: Sequence[str],
             batch_size: int = 64) -> Report:
    predicted: list[list[str]] = []
    consulted = 0
    items = [e.item for e in examples]
    for start in range(0, len(items), batch_size):
        for result in classifier.classify(items[start : start + batch_size]):
            predicted.append(result.themes)
            consulted += result.model.startswith("consulted")
    report = score(predicted, examples, theme_ids)
    report.model_consulted = consulted
    return report


def format_table(report: Report, baseline: Report, *, name: str, baseline_name: str) -> str:
    """A side-by-side text table: the classifier, then the baseline."""
    head = f"{'theme':<20} {'support':>7}   {name:^26}   {baseline_name:^26}"
    sub = f"{'':<20} {'':>7}   {'P':>7} {'R':>7} {'F1':>8}   {'P':>7} {'R':>7} {'F1':>8}"
    lines = [head, sub]
    for theme, s in report.themes.items():
        b = baseline.themes[theme]
        lines.append(f"{theme:<20} {s.support:>7}   {s.precision:>7.3f} {s.recall:>7.3f} {s.f1:>8.3f}"
                     f"   {b.precision:>7.3f} {b.recall:>7.3f} {b.f1:>8.3f}")
    lines.append(f"{'macro-F1':<20} {'':>7}   {'':>7} {'':>7} {report.macro_f1:>8.3f}"
                 f"   {'':>7} {'':>7} {baseline.macro_f1:>8.3f}")
    lines.append("macro-F1 = mean F1 over the themes with support > 0 in the file")
    return "\n".join(lines)
