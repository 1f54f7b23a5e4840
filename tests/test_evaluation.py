"""Evaluation on the gold format: counts, the macro-F1 convention, the dev set, cross-validation helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.decide.head import Head, combine, model_bounds
from classifiers.decide.hybrid import HybridClassifier
from classifiers.decide.keyword import KeywordClassifier
from classifiers.lab.evaluation import Example, evaluate, format_table, load_gold, score
from classifiers.lab.training import folds
from watcher.models import Item

THEMES = ("health-data", "ai", "dmuu-reprocessing", "personal-data", "health-products")


def ex(n: int, *themes: str) -> Example:
    return Example(Item(id=str(n), source="x", url="", title=f"t{n}"), frozenset(themes))


def test_counts_per_theme_and_macro_over_themes_with_support():
    examples = [ex(1, "ai"), ex(2, "ai", "personal-data"), ex(3), ex(4, "personal-data")]
    report = score([["ai"], ["personal-data"], ["ai"], ["personal-data"]], examples, ["ai", "personal-data", "x"])
    ai, pd, x = (report.themes[t] for t in ("ai", "personal-data", "x"))
    assert (ai.tp, ai.fp, ai.fn, ai.support) == (1, 1, 1, 2) and ai.precision == ai.recall == 0.5
    assert (pd.precision, pd.recall, pd.support) == (1.0, 1.0, 2)
    assert x.support == 0 and x.f1 == 1.0  # never given, nothing to find: reported, not averaged
    assert report.macro_f1 == pytest.approx((0.5 + 1.0) / 2)
    assert ("2", "ai", "fn") in report.errors and ("3", "ai", "fp") in report.errors


def test_a_spurious_tag_on_a_theme_without_support_shows_but_does_not_enter_the_macro():
    report = score([["x"]], [ex(1)], ["x", "ai"])
    assert report.themes["x"].f1 == 0.0 and report.themes["x"].precision == 0.0
    assert report.macro_f1 == 0.0  # no theme with support at all
    assert report.as_dict()["themes"]["x"] == {"precision": 0.0, "recall": 1.0, "f1": 0.0, "support": 0}


def test_dev_set_loads_and_the_rules_beat_the_keyword_baseline(fixtures_dir: Path):
    examples = load_gold(fixtures_dir / "gold" / "dev.jsonl")
    assert len(examples) == 400 and examples[0].item.id == "g0230"
    baseline = evaluate(KeywordClassifier(), examples, THEMES)
    rules = evaluate(HybridClassifier(), examples, THEMES)
    assert 0.7 < baseline.macro_f1 < rules.macro_f1
    assert rules.themes["dmuu-reprocessing"].support == 0 and rules.themes["dmuu-reprocessing"].fp == 0
    assert all(s.recall >= 0.95 for s in rules.themes.values())
    table = format_table(rules, baseline, name="hybrid", baseline_name="keyword")
    assert "macro-F1" in table and "dmuu-reprocessing" in table


def test_who_decides_identifier_then_weighted_rules_plus_the_joint_head():
    """combine: a legal identifier decides whatever the model says; elsewhere rule_weight * clip(rules, ±3) plus the
    joint head's logit clipped to ±3, so the model settles the borderline both ways but not a strong rule alone;
    folds are fixed by the seed."""
    head = Head(("ai",), np.zeros((1, 4), np.float32), np.zeros(1, np.float32), np.array([True]),
                np.zeros(1, np.float32), np.ones(1, np.float32), np.zeros(1, np.float32), rule_clip=3.0,
                joint_weights=np.zeros((1, 4), np.float32), joint_bias=np.zeros(1, np.float32),
                rule_weight=np.array([1.2], np.float32))
    R = np.array([[5.0], [5.0], [1.0], [-1.0], [-2.0], [-9.0]], dtype=np.float32)
    certain = np.array([[True], [False], [False], [False], [False], [False]])
    joint = np.array([[-12.0], [-12.0], [-2.0], [2.0], [1.0], [100.0]], dtype=np.float32)
    z = combine(R, certain, head, joint, np.zeros((6, 1), np.float32))
    assert (z[:, 0] > 0).tolist() == [True, True, False, True, False, False]
    assert z[0, 0] >= 1.0 and np.isclose(z[1, 0], 3.6 - 3.0) and np.isclose(z[5, 0], -3.6 + 3.0)
    low, high = model_bounds(head)
    assert (low[0], high[0]) == (-3.0, 3.0)
    assert list(folds(10, 5, 0)) == list(folds(10, 5, 0)) and sorted(np.bincount(folds(10, 5, 0))) == [2] * 5
