"""The ablation of classify --eval: rules, model and hybrid measured side by side (a hash embedder stands in for the
model: what is tested is that each part runs on its own and the report carries all), and who decided each tag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classifiers.decide.head import Head
from classifiers.decide.hybrid import HybridClassifier
from classifiers.lab import ablation
from classifiers.lab.evaluation import load_gold
from tests.model_support import untuned_head
from tests.test_similar import HashEmbedder
from watcher.cli.themes import classify
from watcher.models import Item

GOLD = Path(__file__).parent / "fixtures" / "gold" / "dev.jsonl"


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        self.texts = 0

    def embed(self, texts, *, kind="query", batch_size=32):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return super().embed(texts, kind=kind, batch_size=batch_size)


def hybrid(embedder: HashEmbedder) -> HybridClassifier:
    return HybridClassifier(embedder_factory=lambda: embedder, head=untuned_head(), model_name="hash")


def test_each_part_is_measured_and_the_items_are_embedded_once() -> None:
    examples = load_gold(GOLD)[:60]
    embedder = CountingEmbedder()
    result = ablation.run(examples, rules=HybridClassifier(), built=hybrid(embedder))
    assert list(result.parts) == ["rules", "model", "hybrid"]
    # the model alone embeds every item once; the hybrid only those the rules leave open (and the descriptions)
    assert 60 + 10 <= embedder.texts <= 2 * 60 + 2 * 10
    out = result.as_dict("hybrid")
    assert set(out["ablation"]) == {"rules", "model", "hybrid"} and "macro_f1" in out["baseline"]
    assert out["macro_f1"] == out["ablation"]["hybrid"]["macro_f1"]
    assert out["ablation"]["rules"]["classifier"].startswith("hybrid rules-")
    with pytest.raises(ValueError):
        ablation.run(examples, rules=HybridClassifier(), built=HybridClassifier())
    assert out["ablation"]["model"]["classifier"].startswith("model-only head-")
    table = ablation.format_ablation(result)
    assert "keyword baseline" in table and "model" in table and table.count("macro-F1") == 2


def test_the_model_alone_tags_without_any_rule() -> None:
    model_only = ablation.ModelOnlyClassifier(hybrid(HashEmbedder()))
    items = [e.item for e in load_gold(GOLD)[:30]]
    results = model_only.classify(items)
    assert len(results) == 30 and all(r.embedding is not None and r.model == "consulted: model only" for r in results)
    assert all(t.reason.startswith("model (") and t.origin == "model" for r in results for t in r.tags)
    with pytest.raises(ValueError):
        ablation.ModelOnlyClassifier(HybridClassifier())


def test_each_tag_says_which_part_decided() -> None:
    """identifier > rules and model > model alone; the model can also overrule rules on words alone (not a source's
    own theme with its words), which the note says."""
    recall = Item(id="x", source="ansm", url="https://ansm.sante.fr/x", title="Rappel de lots de Doliprane 500 mg")
    assert HybridClassifier().classify([recall])[0].tags[0].reason.endswith("decided by: rules")
    head = untuned_head()

    def run(embedder: HashEmbedder, item: Item):  # type: ignore[no-untyped-def]
        result = HybridClassifier(embedder_factory=lambda: embedder, head=head, model_name="m").classify([item])[0]
        return {t.theme: t.reason for t in result.tags}, result.model

    agreed, _ = run(Lifted(head, "health-products"), recall)
    assert agreed["health-products"].endswith("decided by: rules and model")
    # recall first: the ANSM's own theme with its words is grounded, the model cannot take it away
    kept, _ = run(Lifted(head, "health-products", -1.0), recall)
    assert kept["health-products"].endswith("decided by: rules (grounded: the model disagreed)")
    press = Item(id="p", source="other", url="https://example.org/p", title="Doliprane 500 mg")
    vetoed, note = run(Lifted(head, "health-products", -1.0), press)
    assert "health-products" not in vetoed and "the model overruled the rules on health-products" in note
    act = Item(id="z", source="other", url="https://example.org/z", title="Texte n° 12",
               identifiers={"celex": "32024R1689"})
    assert run(Lifted(head, "ai", -1.0), act)[0]["ai"].endswith("decided by: identifier")
    text = "Les urgences testent un nouvel outil de tri des patients"
    lifted, _ = run(Lifted(head, "ai"), Item(id="y", source="other", url="https://example.org/y", title=text))
    assert lifted["ai"].endswith("decided by: model") and "model: " in lifted["ai"]


class Lifted(HashEmbedder):
    """Every text embedded along (or against, ``sign=-1``) the head's own weights for ``theme``: the head is sure."""

    def __init__(self, head: Head, theme: str, sign: float = 1.0) -> None:
        j = head.theme_ids.index(theme)
        self.direction = sign * head.weights[j] / np.linalg.norm(head.weights[j])

    def embed(self, texts, *, kind="query", batch_size=32):  # type: ignore[no-untyped-def]
        return np.tile(self.direction, (len(texts), 1)).astype(np.float32)


def test_rules_only_and_model_only_exclude_each_other() -> None:
    result = CliRunner().invoke(classify, ["--eval", str(GOLD), "--rules-only", "--model-only"])
    assert result.exit_code != 0 and "exclude each other" in result.output


def test_rules_only_json_carries_the_rules_in_the_ablation() -> None:
    result = CliRunner().invoke(classify, ["--eval", str(GOLD), "--rules-only", "--json"])
    out = json.loads(result.output)
    assert list(out["ablation"]) == ["rules"] and out["ablation"]["rules"]["macro_f1"] == out["macro_f1"]


def test_the_guidelines_off_topic_list_excludes_whatever_the_model_says() -> None:
    head = untuned_head()
    appointment = Item(id="n", source="cnil", url="https://cnil.fr/fr/n",
                       title="Vincent VILLETTE est nommé secrétaire général de la CNIL")
    classifier = HybridClassifier(embedder_factory=lambda: Lifted(head, "personal-data"), head=head, model_name="m",
                                  consult_all=True)
    (result,) = classifier.classify([appointment])
    assert result.themes == [] and result.scope == "site: cnil.fr"
